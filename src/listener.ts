/**
 * The TLS listener clients connect to: HTTP/2 offered by ALPN with HTTP/1.1
 * as the fallback (or HTTP/1.1 alone), and the same limits on both.
 *
 * kubectl and client-go pick h2 when it is offered and multiplex every request
 * and watch of a process over one connection. Upgrades (exec, attach,
 * port-forward) stay on HTTP/1.1: kubectl's SPDY and WebSocket dialers offer
 * only http/1.1, and Node's HTTP/1.1 code emits 'upgrade' on this server as on
 * any other.
 */
import { constants as crypto } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import { constants, createSecureServer, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Server as TlsServer, TLSSocket } from 'node:tls';

export interface ListenerOptions {
  readonly cert: Buffer;
  readonly key: Buffer;
  /**
   * listen.tls.clientCAFile's PEM: when set, clients are asked for a certificate
   * but never required to send one, and one that does not verify still completes
   * the handshake. The authenticator reads the verdict per request and answers
   * 401 with a Status kubectl can show, as kube-apiserver does (RequestClientCert).
   */
  readonly ca?: Buffer;
  readonly http2: boolean;
  /** SETTINGS_MAX_CONCURRENT_STREAMS offered to HTTP/2 clients. */
  readonly maxConcurrentStreams: number;
  readonly maxHeaderBytes: number;
  /** Time a connection has to finish its TLS handshake. */
  readonly handshakeTimeout: number;
  readonly headerTimeout: number;
  readonly bodyTimeout: number;
  readonly keepAliveTimeout: number;
}

export interface Listener {
  readonly server: TlsServer;
  /**
   * Serves new connections with a reloaded certificate, key and client CA.
   * Use this, not server.setSecureContext(): Node's replaces every context
   * option, and would drop the renegotiation ban set with the client CA.
   */
  setSecureContext(context: Pick<ListenerOptions, 'cert' | 'key' | 'ca'>): void;
  /**
   * Stops accepting connections. Idle HTTP/1.1 connections close now; HTTP/2
   * sessions are told GOAWAY and close once their open streams end.
   * Resolves when every connection has closed.
   */
  stop(): Promise<void>;
  /** Closes every remaining connection at once. */
  destroyAll(): void;
}

/** Node's own default for HTTP/1.1 (maxHeadersCount); HTTP/2's would be 128. */
const MAX_HEADER_PAIRS = 2000;

/**
 * Streams an HTTP/2 client may cancel before their response, as a token bucket:
 * this many at once, refilled at nghttp2's rate. Half of nghttp2's own burst (1000),
 * so that this limit acts first, and twice the default stream limit, so a client
 * that cancels every stream it has open is not cut off.
 */
const EARLY_RESETS = { burst: 500, perSecond: 33 };

export function createListener(options: ListenerOptions): Listener {
  const http1Limits = {
    maxHeaderSize: options.maxHeaderBytes,
    headersTimeout: options.headerTimeout,
    requestTimeout: options.bodyTimeout,
    // Node checks those two timeouts every 30 s by default, which would let a slow
    // client hold a connection for half a minute past headerTimeout.
    connectionsCheckingInterval: Math.min(1000, options.headerTimeout),
    keepAliveTimeout: options.keepAliveTimeout,
    requireHostHeader: true,
  };
  const tls = {
    ...secureContext(options),
    handshakeTimeout: options.handshakeTimeout,
    ...(options.ca && { requestCert: true, rejectUnauthorized: false }),
  };
  const server: TlsServer = options.http2
    ? createSecureServer({
        ...tls,
        allowHTTP1: true,
        // https.createServer turns Nagle off for every connection; the HTTP/2 server does
        // not, and small writes then wait for delayed ACKs: a 40 ms stall per SPDY upgrade.
        noDelay: true,
        maxHeaderListPairs: MAX_HEADER_PAIRS,
        settings: { maxConcurrentStreams: options.maxConcurrentStreams, maxHeaderListSize: options.maxHeaderBytes },
      })
    : createHttpsServer({ ...tls, ...http1Limits });
  // The HTTP/2 server hands HTTP/1.1 connections to Node's HTTP/1.1 code, which
  // reads these limits from the server object, not from the constructor.
  if (options.http2) Object.assign(server, http1Limits);
  // Both servers report failed TLS handshakes (handshakeTimeout too) as 'clientError',
  // whose handler answers in HTTP/1.1. A connection that never finished its handshake
  // just closes: on Node 26 that answer, queued behind a handshake that never ends,
  // kept every timed-out connection open.
  server.removeAllListeners('tlsClientError');
  server.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());

  const sockets = new Set<TLSSocket>();
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    closeWhenIdle(session, options.keepAliveTimeout);
    limitEarlyResets(session);
  });
  if (options.bodyTimeout > 0) server.on('stream', (stream: ServerHttp2Stream) => limitBodyTime(stream, options.bodyTimeout));

  return {
    server,
    setSecureContext(context) {
      server.setSecureContext(secureContext(context));
    },
    stop() {
      // close() also closes idle HTTP/1.1 connections (Node >= 19).
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      return stopped;
    },
    destroyAll() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

function secureContext({ cert, key, ca }: Pick<ListenerOptions, 'cert' | 'key' | 'ca'>) {
  // TLS 1.2 renegotiation could change the peer certificate under an open connection
  // whose verdict the authenticator has cached (TLS 1.3 has no renegotiation).
  return { cert, key, ...(ca && { ca, secureOptions: crypto.SSL_OP_NO_RENEGOTIATION }) };
}

/**
 * HTTP/2 has no keep-alive timeout of its own: a session with no open stream
 * for keepAliveTimeout is closed with GOAWAY, as an idle HTTP/1.1 connection would be.
 */
function closeWhenIdle(session: ServerHttp2Session, keepAliveTimeout: number): void {
  let open = 0;
  session.on('stream', (stream) => {
    open++;
    stream.once('close', () => open--);
  });
  // Node re-arms this timer on every frame in either direction.
  session.setTimeout(keepAliveTimeout, () => {
    if (open === 0) session.close();
  });
}

/**
 * HTTP/2 rapid reset (CVE-2023-44487): a stream cancelled as soon as it is opened
 * costs the client one frame and the proxy a whole request, and does not count
 * against the stream limit. nghttp2 has a limit of its own, but in Node 20 the
 * session it stops is left open and unread until keepAliveTimeout, after about 1,100
 * requests. This one destroys the session with GOAWAY ENHANCE_YOUR_CALM.
 */
function limitEarlyResets(session: ServerHttp2Session): void {
  let tokens = EARLY_RESETS.burst;
  let refilled = Date.now();
  session.on('stream', (stream: ServerHttp2Stream) => {
    stream.once('close', () => {
      if (stream.headersSent || stream.rstCode === constants.NGHTTP2_NO_ERROR) return;
      const now = Date.now();
      tokens = Math.min(EARLY_RESETS.burst, tokens + ((now - refilled) / 1000) * EARLY_RESETS.perSecond);
      refilled = now;
      // A session going away closes its open streams too; goaway() would then throw.
      if (--tokens >= 0 || session.destroyed) return;
      // (destroy() alone, whatever code it is given, closes without a GOAWAY.)
      session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.destroy();
    });
  });
}

/**
 * listen.bodyTimeout over HTTP/2, as Node's requestTimeout does over HTTP/1.1:
 * a request body not complete in time resets its stream. Requests without a
 * body (every watch) are not timed.
 */
function limitBodyTime(stream: ServerHttp2Stream, bodyTimeout: number): void {
  if (stream.endAfterHeaders) return;
  const timer = setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), bodyTimeout);
  stream.once('end', () => clearTimeout(timer));
  stream.once('close', () => clearTimeout(timer));
}
