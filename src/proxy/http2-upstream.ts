/**
 * HTTP/2 to the upstream (`upstream.http2: auto`): requests and watches as
 * streams of a few shared TLS connections, on node:http2 directly.
 *
 * Not undici's `allowH2` (7.30): a GOAWAY destroys every stream of the
 * connection (watches included; fixed in undici 8, which needs Node 22), a
 * request with a streamed body waits until every other stream of its
 * connection has finished (a `kubectl apply` behind a watch never starts),
 * and streams beyond the upstream's SETTINGS_MAX_CONCURRENT_STREAMS queue
 * inside nghttp2 behind open watches. Here:
 *
 * - h2 only when ALPN picked it. The first connection that comes back
 *   without h2 is closed before anything is written on it, and from then on
 *   every request, the ones waiting included, goes to the HTTP/1.1 pool
 *   (`fallback`): nothing is ever pipelined or queued behind a watch.
 * - A stream is opened only on a connection below the upstream's stream
 *   limit; when all are full, another connection is opened (up to
 *   `maxConnections`, after which requests wait for a stream to close, within
 *   their headersTimeout). A connection is retired before its stream ids run out.
 * - GOAWAY: the connection takes no new streams; Node lets the streams it
 *   covers finish; a bodiless request the upstream refused unprocessed
 *   (REFUSED_STREAM) is sent again on another connection.
 * - Flow control per stream: a paused handler pauses its stream only, whose
 *   window then closes; Node acknowledges the connection window as data
 *   arrives, so the other streams keep flowing.
 *
 * Handlers of undici's older callback API (its `request()`, which the
 * SubjectAccessReview uses) and upgrades go to the HTTP/1.1 pool.
 */
import { connect as http2Connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type Settings } from 'node:http2';
import { pipeline, type Readable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Dispatcher, errors } from 'undici';

export interface Http2UpstreamOptions {
  /** Where to connect, and the TLS settings (the proxy's context, server name); ALPN is set here. */
  readonly tls: ConnectionOptions & { host: string; port: number };
  /** The HTTP/1.1 pool for the same upstream: the fallback, and the way for upgrades and callback handlers. */
  readonly fallback: Dispatcher;
  /** Most HTTP/2 connections at once (upstream.connections); unset: no limit. */
  readonly maxConnections?: number;
  /** Called once, when a connection comes back without h2 and the fallback takes over. */
  readonly onHttp1?: (alpn: string | false) => void;
  /** Connections opened, GOAWAYs, requests sent again: for the debug log. */
  readonly debug?: (fields: Record<string, unknown>, message: string) => void;
  /** A connection without streams is closed after this long. */
  readonly idleTimeout?: number;
  /** A connection with streams is PINGed this often, and closed when no answer comes within `pingTimeout`. */
  readonly pingInterval?: number;
  readonly pingTimeout?: number;
  readonly connectTimeout?: number;
  /**
   * Streams one connection may open in its life before it is retired (closed gracefully, a
   * new one takes the next requests). The protocol's limit is 2^30: client stream ids are the
   * odd numbers below 2^31. Lower only in tests.
   */
  readonly streamsPerConnection?: number;
}

/** Client stream ids are odd and below 2^31 (RFC 9113 §5.1.1): a connection has 2^30 in its life. */
const STREAM_IDS = 2 ** 30;

/** Header fields HTTP/2 forbids (RFC 9113 §8.2.2); `te` is allowed only as "trailers". */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

interface Connection {
  readonly session: ClientHttp2Session;
  streams: number;
  maxStreams: number;
  /** GOAWAY received: no new streams (see {@link closing}). */
  draining: boolean;
  /** The last stream a GOAWAY said the upstream may have processed; the ones above it were not. */
  goawayLastStreamID?: number;
  /** Streams it may still open: stream ids run out (see {@link STREAM_IDS}); at 0 it is retired. */
  streamsLeft: number;
  idle?: NodeJS.Timeout;
}

interface Waiting {
  readonly opts: Dispatcher.DispatchOptions;
  readonly handler: Dispatcher.DispatchHandler;
  /** Sent once already and refused unprocessed (GOAWAY, REFUSED_STREAM). */
  readonly retry: boolean;
  /** Fails it if no stream has come within its headersTimeout (set while it is in the queue). */
  deadline?: NodeJS.Timeout;
}

export class Http2Upstream extends Dispatcher {
  readonly #options: Http2UpstreamOptions;
  readonly #authority: string;
  readonly #connections = new Set<Connection>();
  readonly #waiting: Waiting[] = [];
  #connecting = false;
  /** The upstream answered ALPN without h2: everything goes to the fallback. */
  #http1 = false;
  #closing = false;
  #closed: (() => void) | undefined;
  #closedPromise: Promise<void> | undefined;
  #ping: NodeJS.Timeout | undefined;

  constructor(options: Http2UpstreamOptions) {
    super();
    this.#options = options;
    const { host, port } = options.tls;
    this.#authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  /** Whether requests now go over HTTP/2 (false before the first connection, and after a fallback). */
  get http2(): boolean {
    return !this.#http1 && this.#connections.size > 0;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#http1 || opts.upgrade || handler.onRequestStart === undefined) return this.#options.fallback.dispatch(opts, handler);
    if (this.#closing) {
      handler.onResponseError?.(deadController(), new errors.ClientClosedError());
      return false;
    }
    this.#schedule({ opts, handler, retry: false });
    return true;
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#closing = true;
    // A second close() waits for the same end (it replaced the first one's resolver, which then never resolved).
    const done = (this.#closedPromise ??= Promise.all([
      new Promise<void>((resolve) => {
        this.#closed = resolve;
        this.#closeIdle();
      }),
      this.#options.fallback.close(),
    ]).then(() => {}));
    if (callback) void done.then(callback);
    else return done;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const err = typeof errOrCallback === 'function' ? null : (errOrCallback ?? null);
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    this.#closing = true;
    const reason = err ?? new errors.ClientDestroyedError();
    for (const waiting of this.#dequeueAll()) waiting.handler.onResponseError?.(deadController(), reason);
    for (const connection of this.#connections) connection.session.destroy();
    this.#connections.clear();
    clearInterval(this.#ping);
    this.#closed?.();
    const done = this.#options.fallback.destroy(err);
    if (cb) void done.then(cb);
    else return done;
  }

  #schedule(waiting: Waiting): void {
    // A request sent again after the fallback took over: nothing here would ever take it.
    if (this.#http1) return void this.#options.fallback.dispatch(waiting.opts, waiting.handler);
    for (const connection of this.#connections) {
      if (takesStream(connection)) return this.#start(connection, waiting);
    }
    this.#enqueue(waiting);
    this.#connectIfNeeded();
  }

  /**
   * Queued until a stream frees or a connection opens. Not forever: at upstream.connections
   * with every stream held by a watch, a request would otherwise wait (and its client with
   * it, and the queue grow) until a watch ends. It fails as undici's would without a head.
   * The wait has its own headersTimeout and a stream gets a whole one, as undici starts it
   * when the request is written: a stream sent with what was left of one timed out while the
   * upstream ran it (a DELETE that ran, answered 504).
   */
  #enqueue(waiting: Waiting): void {
    this.#waiting.push(waiting);
    const { headersTimeout = 300_000 } = waiting.opts;
    if (!headersTimeout) return;
    waiting.deadline = setTimeout(() => {
      const at = this.#waiting.indexOf(waiting);
      if (at === -1) return;
      this.#waiting.splice(at, 1);
      waiting.handler.onResponseError?.(deadController(), new errors.HeadersTimeoutError());
    }, headersTimeout).unref();
  }

  /** Empties the queue, for those that go elsewhere or fail together. */
  #dequeueAll(): Waiting[] {
    const all = this.#waiting.splice(0);
    for (const waiting of all) clearTimeout(waiting.deadline);
    return all;
  }

  /** Hands waiting requests to connections with free streams, and opens one more if some are left. */
  #drain(): void {
    while (this.#waiting.length) {
      const connection = [...this.#connections].find(takesStream);
      if (!connection) break;
      this.#start(connection, this.#waiting.shift()!);
    }
    this.#connectIfNeeded();
    this.#closeIdle();
  }

  #connectIfNeeded(): void {
    if (!this.#waiting.length || this.#connecting || this.#http1) return;
    // Connections after a GOAWAY do not count: one kept open by a watch would hold every new request back.
    const { maxConnections } = this.#options;
    if (maxConnections !== undefined && [...this.#connections].filter((c) => !closing(c)).length >= maxConnections) return;
    this.#connecting = true;
    const socket = tlsConnect({ ...this.#options.tls, ALPNProtocols: ['h2', 'http/1.1'] });
    // As undici does for its sockets: no Nagle (small frames), TCP keep-alive.
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    // Until the upstream's SETTINGS: a connection is ready only when its stream limit is known.
    const timer = setTimeout(() => socket.destroy(new errors.ConnectTimeoutError()), this.#options.connectTimeout ?? 10_000);
    let failedOnce = false;
    const failed = (err: Error) => {
      if (failedOnce) return;
      failedOnce = true;
      clearTimeout(timer);
      this.#connecting = false;
      // Nothing was sent: the requests waiting for this connection fail as undici's would.
      for (const waiting of this.#dequeueAll()) waiting.handler.onResponseError?.(deadController(), err);
      this.#closeIdle(); // close() waited for this attempt
    };
    socket.once('error', failed);
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol === 'h2') return this.#open(socket, () => clearTimeout(timer), failed);
      clearTimeout(timer);
      socket.off('error', failed);
      this.#connecting = false;
      socket.destroy();
      this.#fallBack(socket.alpnProtocol ?? false);
    });
  }

  /** The upstream spoke HTTP/1.1: the fallback carries everything from now on, the requests waiting here first. */
  #fallBack(alpn: string | false): void {
    this.#http1 = true;
    this.#options.onHttp1?.(alpn);
    for (const waiting of this.#dequeueAll()) this.#options.fallback.dispatch(waiting.opts, waiting.handler);
    this.#closeIdle();
  }

  /** A TLS connection that chose h2: usable once the upstream's SETTINGS say how many streams it takes. */
  #open(socket: TLSSocket, ready: () => void, failed: (err: Error) => void): void {
    // Node's client takes 128 header lines in a response by default; undici (HTTP/1.1) has no
    // count, only its 16 KiB head, so as many lines as fit that (a gateway app's 200 cookies).
    const session = http2Connect(`https://${this.#authority}`, { createConnection: () => socket, settings: { enablePush: false }, maxHeaderListPairs: 2_048 });
    const connection: Connection = { session, streams: 0, maxStreams: 0, draining: false, streamsLeft: this.#options.streamsPerConnection ?? STREAM_IDS };
    let settled = false;
    session.on('error', () => {}); // its streams fail on their own; 'close' follows
    session.on('remoteSettings', (settings: Settings) => {
      connection.maxStreams = settings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
      if (!settled) {
        settled = true;
        if (connection.maxStreams === 0) {
          // Full before its first stream: opening another for the requests waiting would
          // open one after another, each as full (hundreds a second, until no descriptor is left).
          failed(new errors.SocketError('the upstream\'s HTTP/2 SETTINGS allow no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)'));
          return void session.close();
        }
        this.#options.debug?.({ maxStreams: connection.maxStreams, connections: this.#connections.size + 1 }, 'upstream HTTP/2 connection opened');
        ready();
        socket.off('error', failed);
        this.#connecting = false;
        this.#connections.add(connection);
      }
      this.#drain();
      // One that took no stream (what waited went elsewhere) closes when idle, like any other.
      this.#idleLater(connection);
    });
    session.on('goaway', (code: number, lastStreamID: number) => {
      this.#options.debug?.({ code, lastStreamID, streams: connection.streams }, 'upstream HTTP/2 GOAWAY: no new streams on this connection');
      // Node closes the session itself: gracefully on NO_ERROR (streams up to the last id finish).
      connection.draining = true;
      connection.goawayLastStreamID = lastStreamID;
      this.#drain();
    });
    session.once('close', () => {
      clearTimeout(connection.idle);
      if (!settled) return failed(new errors.SocketError('the upstream closed the HTTP/2 connection before its SETTINGS'));
      this.#connections.delete(connection);
      this.#drain();
    });
    this.#keepPinging();
  }

  #start(connection: Connection, waiting: Waiting): void {
    const { opts, handler } = waiting;
    clearTimeout(waiting.deadline);
    clearTimeout(connection.idle);
    const body = opts.body as Readable | null | undefined;
    const controller = new StreamController();
    let responded = false;
    let trailers: IncomingHttpHeaders = {};
    const fail = (err: Error) => {
      if (controller.settled) return;
      controller.settled = true;
      handler.onResponseError?.(controller, err);
    };
    controller.onAbort = fail;
    // A handler that throws aborts its own request, as undici's Request does: the throw would
    // otherwise leave a stream event uncaught and end the process.
    const call = (step: () => void) => {
      try {
        step();
      } catch (err) {
        controller.abort(err as Error);
      }
    };

    // Before the stream exists, as undici's pool does: a request whose client left while it
    // waited (forward aborts here) is never sent. It was, whole, and then reset: a DELETE
    // the user gave up on still ran.
    call(() => handler.onRequestStart?.(controller, {}));
    if (controller.aborted) return this.#idleLater(connection);
    let stream: ClientHttp2Stream;
    try {
      stream = connection.session.request(this.#headersOf(opts), { endStream: body == null });
    } catch (err) {
      // A header Node will not send over HTTP/2 (e.g. two Content-Type lines): this request only.
      fail(err as Error);
      return this.#idleLater(connection);
    }
    connection.streams++;
    connection.streamsLeft--;
    controller.attach(stream);

    stream.once('close', () => {
      connection.streams--;
      if (!controller.settled) {
        if (!responded && body == null && !waiting.retry && unprocessed(stream, connection)) {
          // Refused unprocessed (the streams past a GOAWAY's last id): safe to send again.
          controller.settled = true;
          this.#options.debug?.({ path: opts.path }, 'the upstream refused an HTTP/2 stream unprocessed (GOAWAY); sent again on another connection');
          this.#schedule({ ...waiting, retry: true });
        } else {
          fail(new errors.SocketError(`HTTP/2 stream closed before the response was complete (code ${stream.rstCode})`));
        }
      }
      this.#idleLater(connection);
      this.#drain();
    });
    stream.on('error', () => {}); // settled at 'close', with what the stream's reset code says

    if (body != null) {
      pipeline(body, stream, (err) => {
        if (err && !controller.settled) {
          stream.close(constants.NGHTTP2_CANCEL);
          fail(err);
        }
      });
    }
    // undici's two timeouts: for the response head, then between body chunks (0: none, for watches).
    const { headersTimeout = 300_000, bodyTimeout = 300_000 } = opts;
    stream.setTimeout(headersTimeout ?? 0);
    stream.on('timeout', () => {
      stream.close(constants.NGHTTP2_CANCEL);
      fail(responded ? new errors.BodyTimeoutError() : new errors.HeadersTimeoutError());
    });

    stream.once('response', (head) => {
      responded = true;
      stream.setTimeout(bodyTimeout ?? 0);
      const { ':status': status, ...headers } = head;
      if (!controller.settled) call(() => handler.onResponseStart?.(controller, Number(status), headers, ''));
      // The body is read from here on, never before: Node emits 'response' on the next tick but
      // 'data' at once, so a stream that already flowed handed a body over before its head when
      // both came in one read (seen against kube-apiserver: the proxy wrote an implicit 200 head,
      // then the real one threw ERR_HTTP_HEADERS_SENT and the process died). Until now the
      // stream buffers what comes, within its flow-control window.
      stream.on('data', (chunk: Buffer) => {
        if (!controller.settled) call(() => handler.onResponseData?.(controller, chunk));
      });
      controller.headIn();
    });
    stream.once('trailers', (received: IncomingHttpHeaders) => (trailers = received));
    stream.once('end', () => {
      // Node ends the readable side of every stream it closes, a reset or a connection lost
      // mid-body included: only an end without a reset code is the upstream's END_STREAM.
      // (A cut-off list was relayed as complete; 'close' now fails it.)
      if (!responded || controller.settled || stream.rstCode || connection.session.destroyed) return;
      controller.settled = true;
      handler.onResponseEnd?.(controller, trailers);
    });
  }

  /** undici's dispatch options as HTTP/2 header fields: lower-case names, Host as :authority. */
  #headersOf(opts: Dispatcher.DispatchOptions): OutgoingHttpHeaders {
    // No prototype: a client's header named __proto__ or constructor is a header like any other.
    const out: OutgoingHttpHeaders = Object.assign(Object.create(null) as OutgoingHttpHeaders, { ':method': opts.method, ':path': opts.path, ':scheme': 'https', ':authority': this.#authority });
    const add = (name: string, value: string) => {
      const lower = name.toLowerCase();
      if (lower === 'host') out[':authority'] = value;
      else if (CONNECTION_SPECIFIC.has(lower) || (lower === 'te' && value.toLowerCase() !== 'trailers')) return;
      else {
        const had = out[lower];
        out[lower] = had === undefined ? value : [...(Array.isArray(had) ? had : [String(had)]), value];
      }
    };
    const { headers } = opts;
    if (Array.isArray(headers)) {
      for (let i = 0; i < headers.length; i += 2) add(String(headers[i]), String(headers[i + 1]));
    } else if (headers) {
      for (const [name, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
        for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) add(name, one);
      }
    }
    return out;
  }

  /** A connection without streams is closed after the idle timeout (at once when closing, or retired). */
  #idleLater(connection: Connection): void {
    if (connection.streams > 0) return;
    clearTimeout(connection.idle);
    if (this.#closing || connection.streamsLeft === 0) return void connection.session.close();
    connection.idle = setTimeout(() => connection.session.close(), this.#options.idleTimeout ?? 30_000).unref();
  }

  /**
   * After close(): each connection closes when its last stream ends. They are not marked
   * draining: a request that waited, or one refused unprocessed and sent again, still needs
   * a stream (a connection opened for it draining at birth made the next one: a loop).
   */
  #closeIdle(): void {
    if (!this.#closing) return;
    for (const connection of this.#connections) this.#idleLater(connection);
    if (this.#connections.size || this.#waiting.length || this.#connecting) return;
    clearInterval(this.#ping);
    this.#closed?.();
  }

  /**
   * A connection whose peer is gone (no RST, no FIN) would keep every watch on it
   * silent forever; client-go PINGs after 30 s without a frame and gives up after 15.
   */
  #keepPinging(): void {
    if (this.#ping) return;
    const interval = this.#options.pingInterval ?? 30_000;
    const deadline = this.#options.pingTimeout ?? 15_000;
    this.#ping = setInterval(() => {
      for (const { session, streams } of this.#connections) {
        if (streams === 0 || session.closed) continue;
        const timer = setTimeout(() => session.destroy(new Error('the upstream did not answer a PING')), deadline).unref();
        // (false: too many PINGs unanswered already; the earlier timers decide)
        if (!session.ping(() => clearTimeout(timer))) clearTimeout(timer);
      }
    }, interval).unref();
  }
}

/** The handle a handler gets: pause and resume its stream only; abort resets it. */
class StreamController implements Dispatcher.DispatchController {
  settled = false;
  onAbort: (err: Error) => void = () => {};
  #paused = false;
  /** The head has come and the body has a reader: before, resume() must not let it flow. */
  #headIn = false;
  #reason: Error | null = null;
  /** From when the request is sent (the handler gets the controller before that). */
  #stream: ClientHttp2Stream | undefined;

  attach(stream: ClientHttp2Stream): void {
    this.#stream = stream;
    if (this.#paused) stream.pause();
  }

  /** From the head on, the body flows unless the handler has paused it. */
  headIn(): void {
    this.#headIn = true;
    if (!this.#paused) this.#stream?.resume();
  }

  get aborted(): boolean {
    return this.#reason !== null;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  abort(reason: Error): void {
    if (this.#reason !== null || this.settled) return;
    this.#reason = reason;
    this.#stream?.close(constants.NGHTTP2_CANCEL);
    this.onAbort(reason);
  }
  pause(): void {
    this.#paused = true;
    this.#stream?.pause();
  }
  resume(): void {
    this.#paused = false;
    // Before the head, a flowing stream would hand its first bytes to no one: they were lost.
    if (this.#headIn) this.#stream?.resume();
  }
}

/**
 * Whether the upstream never processed a stream that closed without an answer. After a GOAWAY
 * only its last stream id says so (Node then resets every stream with the GOAWAY's own code,
 * which says nothing about one stream: a code of 7 made a processed DELETE look refused); without
 * one, RST_STREAM REFUSED_STREAM does (RFC 9113 §8.7).
 */
function unprocessed(stream: ClientHttp2Stream, connection: Connection): boolean {
  if (connection.goawayLastStreamID !== undefined) return (stream.id ?? Number.POSITIVE_INFINITY) > connection.goawayLastStreamID;
  return stream.rstCode === constants.NGHTTP2_REFUSED_STREAM;
}

/**
 * Takes no new stream: after a GOAWAY, or from the moment the idle timer, close() or an
 * unanswered PING closes it (Node says so at once), not only from its 'close' event.
 * Retired too at its last stream id: Node would fail every later request on it
 * (ERR_HTTP2_OUT_OF_STREAMS), after twelve days at 1,000 requests a second. As in Go's
 * transport, its streams finish and it closes with the last; not at once, which refuses
 * the streams Node has not yet sent.
 */
function closing(connection: Connection): boolean {
  return connection.draining || connection.streamsLeft === 0 || connection.session.closed || connection.session.destroyed;
}

/** Has room for a stream, and is not closing. */
function takesStream(connection: Connection): boolean {
  return !closing(connection) && connection.streams < connection.maxStreams;
}

/** For a request that fails before it has a stream. */
function deadController(): Dispatcher.DispatchController {
  return { aborted: true, paused: false, reason: null, abort() {}, pause() {}, resume() {} };
}
