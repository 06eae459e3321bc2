/**
 * The load generator (a child process, outside every measured process).
 * It runs one job at a time for the harness and answers with what it measured:
 *
 * - `closed`: N keep-alive connections (undici Pool, no pipelining), each sending
 *   its next request as soon as the previous one is answered: the maximum rate.
 *   With `newConnectionPerRequest`, every request opens a fresh TLS connection
 *   with no session resumption, as a new kubectl process does. With
 *   `http2Sessions`, the N requests in flight are N streams spread over that
 *   many HTTP/2 sessions (node:http2) instead.
 * - `open`: a fixed arrival rate on a 1 ms schedule, never waiting for answers
 *   (requests beyond the N connections queue in the pool, and that wait is
 *   counted); latency from the moment a request is issued to its last byte.
 *   The schedule lag (issue time minus intended time) is reported so that a
 *   generator that fell behind shows.
 * - `watchOpen`/`watchCollect`/`watchClose`: many idle watches on raw TLS
 *   sockets (one connection each, as HTTP/1.1 clients hold them), or with
 *   `http2Streams` as streams of shared HTTP/2 sessions (that many per session,
 *   as client-go's informers share one connection), then the delivery delay of
 *   each event, read from the upstream's monotonic clock in its resourceVersion
 *   (CLOCK_MONOTONIC is one clock for every process).
 * - `upgrades`: SPDY/3.1 upgrade sessions at a fixed rate, each on a new TLS
 *   connection; latency from connect to the end of the 101 head.
 * - `tunnel`: one upgrade carrying `bytes` from the upstream; bytes per second.
 *
 * Around the measured part of `closed` and `open` it sends `mark` events, so
 * the harness reads the proxy's CPU time over exactly that window.
 */
import { readFileSync } from 'node:fs';
import { connect as http2Connect, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import { emitEvent, serveCalls } from './ipc.js';
import { Samples, percentile, summarize, type LatencySummary } from './stats.js';

/** Where and how to connect, and what every request carries. */
export interface Target {
  readonly origin: string;
  /** PEM file paths: the CA that signed the server, and an optional client certificate. */
  readonly caFile: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  /** Header lines [name, value, …] added to every request. */
  readonly headers: readonly string[];
  /** A JSON file holding an array of bearer tokens, used one after another (overrides nothing in `headers`). */
  readonly tokensFile?: string;
}

export interface ClosedJob {
  readonly target: Target;
  readonly path: string;
  readonly connections: number;
  readonly warmupMs: number;
  /** Also warm up until this many requests were answered (e.g. one pass over every token). */
  readonly warmupRequests?: number;
  readonly durationMs: number;
  readonly newConnectionPerRequest?: boolean;
  /** Over HTTP/2: the `connections` requests in flight become streams spread over this many sessions. */
  readonly http2Sessions?: number;
}

export interface OpenJob {
  readonly target: Target;
  readonly path: string;
  readonly connections: number;
  readonly rate: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface ThroughputResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly firstError?: string;
  readonly latency: LatencySummary;
}

export interface OpenResult extends ThroughputResult {
  readonly targetRate: number;
  readonly lagP99: number;
  readonly lagMax: number;
}

export interface WatchOpenJob {
  readonly target: Target;
  readonly path: string;
  readonly count: number;
  readonly concurrency: number;
  /** Over HTTP/2: this many watches (streams) per session, so ceil(count / http2Streams) sessions. */
  readonly http2Streams?: number;
  /**
   * Over HTTP/2: count a watch open once its request is sent, not when its response head arrives,
   * for a server that holds the head back until the first event (nginx 1.22 does, over HTTP/2 only).
   * The harness then checks at the upstream that every watch arrived, and that every event was delivered.
   */
  readonly headWithFirstEvent?: boolean;
}

export interface WatchOpenResult {
  readonly opened: number;
  readonly failed: number;
  readonly firstError?: string;
  readonly seconds: number;
}

export interface WatchCollectResult {
  readonly events: number;
  readonly open: number;
  readonly delay: LatencySummary;
}

export interface UpgradeJob {
  readonly target: Target;
  readonly path: string;
  readonly rate: number;
  readonly durationMs: number;
}

export interface UpgradeResult {
  readonly sessions: number;
  readonly failed: number;
  readonly firstError?: string;
  readonly latency: LatencySummary;
}

export interface TunnelJob {
  readonly target: Target;
  readonly path: string;
  readonly bytes: number;
}

export interface TunnelResult {
  readonly bytes: number;
  readonly seconds: number;
  readonly bytesPerSecond: number;
  /** Connect to 101. */
  readonly setupMs: number;
}

const USER_AGENT = 'kubectl/v1.33.0 (linux/amd64) kubernetes/bench';

interface TlsFiles {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

const fileCache = new Map<string, Buffer>();
const file = (path: string): Buffer => {
  let data = fileCache.get(path);
  if (!data) fileCache.set(path, (data = readFileSync(path)));
  return data;
};

function tlsFiles(target: Target): TlsFiles {
  return {
    ca: file(target.caFile),
    ...(target.certFile && { cert: file(target.certFile) }),
    ...(target.keyFile && { key: file(target.keyFile) }),
  };
}

function tokens(target: Target): readonly string[] | undefined {
  return target.tokensFile ? (JSON.parse(file(target.tokensFile).toString('utf8')) as string[]) : undefined;
}

/** Header lines for request `n`: the target's own, then the n-th token if there are tokens. */
function headerSource(target: Target): (n: number) => string[] {
  const base = ['user-agent', USER_AGENT, 'accept', 'application/json, */*', ...target.headers];
  const list = tokens(target);
  if (!list?.length) return () => base;
  const withTokens = list.map((t) => [...base, 'authorization', `Bearer ${t}`]);
  return (n) => withTokens[n % withTokens.length]!;
}

function pool(target: Target, connections: number, freshConnections: boolean): Pool {
  return new Pool(target.origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    // A new kubectl process has no TLS session to resume: every handshake is full.
    connect: { ...tlsFiles(target), rejectUnauthorized: true, maxCachedSessions: freshConnections ? 0 : 100 },
  });
}

type Done = (err: Error | null, status: number) => void;

/** One request through the pool with the lowest-overhead handler undici offers. */
function fire(dispatcher: Dispatcher, path: string, headers: string[], reset: boolean, done: Done): void {
  let status = 0;
  dispatcher.dispatch(
    { path, method: 'GET', headers, reset },
    {
      onRequestStart() {},
      onResponseStart(_c, statusCode) {
        status = statusCode;
      },
      onResponseData() {},
      onResponseEnd() {
        done(null, status);
      },
      onResponseError(_c, err) {
        done(err, status);
      },
    },
  );
}

/** Where a closed loop sends its `n`-th request from `lane` (one connection, or one stream slot of an HTTP/2 session). */
interface Sender {
  fire(lane: number, n: number, done: Done): void;
  close(): Promise<unknown>;
}

function poolSender(job: ClosedJob): Sender {
  const p = pool(job.target, job.connections, job.newConnectionPerRequest === true);
  const headersFor = headerSource(job.target);
  const reset = job.newConnectionPerRequest === true;
  return { fire: (_lane, n, done) => fire(p, job.path, headersFor(n), reset, done), close: () => p.destroy() };
}

/** Lane i sends on session i mod `sessions`: `connections / sessions` streams in flight on each. */
async function http2Sender(job: ClosedJob, sessions: number): Promise<Sender> {
  const open = await Promise.all(Array.from({ length: sessions }, () => http2Session(job.target)));
  const headersFor = http2HeaderSource(job.target, job.path);
  return { fire: (lane, n, done) => fireHttp2(open[lane % open.length]!, headersFor(n), done), close: () => destroyAll(open) };
}

async function closed(job: ClosedJob): Promise<ThroughputResult> {
  const sender = job.http2Sessions ? await http2Sender(job, job.http2Sessions) : poolSender(job);
  const latencies = new Samples();
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  let issued = 0;
  let warmAnswered = 0;
  let errors = 0;
  let non2xx = 0;
  let firstError: string | undefined;
  let measureStart = 0;
  let running = job.connections;

  let finished!: () => void;
  const allStopped = new Promise<void>((resolve) => (finished = resolve));
  let warmedUp!: () => void;
  const warm = new Promise<void>((resolve) => (warmedUp = resolve));
  const warmupRequests = job.warmupRequests ?? 0;
  if (warmupRequests === 0) warmedUp();

  const loop = (lane: number) => {
    if (phase === 'stop') {
      if (--running === 0) finished();
      return;
    }
    const startedIn = phase;
    const t0 = performance.now();
    sender.fire(lane, issued++, (err, status) => {
      if (err) {
        errors++;
        firstError ??= `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`;
      } else if (startedIn === 'measure' && phase === 'measure') {
        latencies.push(performance.now() - t0);
        if (status < 200 || status > 299) non2xx++;
      } else if (startedIn === 'warmup' && ++warmAnswered >= warmupRequests) warmedUp();
      // A dead target must not spin: back off a little on errors.
      if (err) setTimeout(loop, 10, lane);
      else loop(lane);
    });
  };
  for (let i = 0; i < job.connections; i++) loop(i);

  await Promise.all([Promise.race([warm, sleep(120_000)]), sleep(job.warmupMs)]);
  emitEvent('mark', { phase: 'start' });
  errors = 0;
  non2xx = 0;
  firstError = undefined;
  measureStart = performance.now();
  phase = 'measure';
  await sleep(job.durationMs);
  // Only requests started and answered inside the window count.
  const seconds = (performance.now() - measureStart) / 1000;
  phase = 'stop';
  emitEvent('mark', { phase: 'end' });
  const requests = latencies.length;
  await Promise.race([allStopped, sleep(10_000)]);
  await sender.close();
  return { requests, seconds, rps: requests / seconds, errors, non2xx, ...(firstError !== undefined ? { firstError } : {}), latency: summarize(latencies) };
}

async function open(job: OpenJob): Promise<OpenResult> {
  const p = pool(job.target, job.connections, false);
  const headersFor = headerSource(job.target);
  const latencies = new Samples();
  const lags = new Samples();
  let errors = 0;
  let non2xx = 0;
  let firstError: string | undefined;
  let outstanding = 0;
  let allAnswered: (() => void) | undefined;

  const run = (ms: number, record: boolean) =>
    new Promise<number>((resolve) => {
      const start = performance.now();
      const total = Math.floor((ms * job.rate) / 1000);
      let sent = 0;
      const tick = () => {
        const now = performance.now();
        const due = Math.min(total, Math.floor(((now - start) * job.rate) / 1000));
        while (sent < due) {
          const t0 = performance.now();
          if (record) lags.push(t0 - (start + (sent * 1000) / job.rate));
          outstanding++;
          fire(p, job.path, headersFor(sent), false, (err, status) => {
            if (record) {
              if (err) {
                errors++;
                firstError ??= err.message;
              } else {
                latencies.push(performance.now() - t0);
                if (status < 200 || status > 299) non2xx++;
              }
            }
            if (--outstanding === 0) allAnswered?.();
          });
          sent++;
        }
        if (sent >= total) resolve((performance.now() - start) / 1000);
        else setTimeout(tick, 1);
      };
      tick();
    });

  await run(job.warmupMs, false);
  emitEvent('mark', { phase: 'start' });
  const seconds = await run(job.durationMs, true);
  if (outstanding > 0) await Promise.race([new Promise<void>((resolve) => (allAnswered = resolve)), sleep(10_000)]);
  emitEvent('mark', { phase: 'end' });
  await p.destroy();
  const lag = lags.sorted();
  const requests = latencies.length;
  return {
    requests,
    seconds,
    rps: requests / seconds,
    targetRate: job.rate,
    errors,
    non2xx,
    ...(firstError !== undefined ? { firstError } : {}),
    latency: summarize(latencies),
    lagP99: percentile(lag, 99),
    lagMax: lag.length ? lag[lag.length - 1]! : Number.NaN,
  };
}

/** Connects a raw TLS socket to the target and writes one request head. */
function rawRequest(target: Target, head: string): TLSSocket {
  const url = new URL(target.origin);
  const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ...tlsFiles(target), rejectUnauthorized: true });
  socket.setNoDelay(true);
  socket.once('secureConnect', () => socket.write(head));
  return socket;
}

function requestHead(target: Target, path: string, extra: readonly string[]): string {
  const headers = headerSource(target)(0);
  let head = `GET ${path} HTTP/1.1\r\nHost: ${new URL(target.origin).host}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`;
  return `${head}\r\n`;
}

// ---- HTTP/2 -------------------------------------------------------------------

/** An HTTP/2 session to the target (ALPN h2), once the server's SETTINGS have arrived. */
function http2Session(target: Target): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(target.origin, { ...tlsFiles(target), rejectUnauthorized: true, settings: { enablePush: false } });
    const fail = (err: Error) => {
      clearTimeout(timer);
      session.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error('no HTTP/2 SETTINGS within 10 s')), 10_000);
    session.once('error', fail);
    session.once('remoteSettings', () => {
      if (session.alpnProtocol !== 'h2') return fail(new Error(`ALPN chose ${String(session.alpnProtocol)}, not h2`));
      clearTimeout(timer);
      session.off('error', fail);
      // A session's error also errors each of its streams, which is where it is counted.
      session.on('error', () => undefined);
      resolve(session);
    });
  });
}

/** The header lines of `headerSource` as HTTP/2 header objects (names in lower case, a repeated name as a list), made once each. */
function http2HeaderSource(target: Target, path: string): (n: number) => OutgoingHttpHeaders {
  const linesFor = headerSource(target);
  const made = new Map<string[], OutgoingHttpHeaders>();
  return (n) => {
    const lines = linesFor(n);
    let headers = made.get(lines);
    if (!headers) {
      headers = { ':method': 'GET', ':path': path };
      for (let i = 0; i < lines.length; i += 2) {
        const name = lines[i]!.toLowerCase();
        const had = headers[name];
        headers[name] = had === undefined ? lines[i + 1]! : [...(Array.isArray(had) ? had : [String(had)]), lines[i + 1]!];
      }
      made.set(lines, headers);
    }
    return headers;
  };
}

/** Opens one stream with a GET; the request's end goes with its HEADERS frame. */
function http2Stream(session: ClientHttp2Session, headers: OutgoingHttpHeaders): ClientHttp2Stream {
  return session.request(headers, { endStream: true });
}

/** One request as a stream of `session`; `done` once the stream has closed. */
function fireHttp2(session: ClientHttp2Session, headers: OutgoingHttpHeaders, done: Done): void {
  let stream: ClientHttp2Stream;
  try {
    stream = http2Stream(session, headers);
  } catch (err) {
    // The session is gone (closed, GOAWAY): fail asynchronously, as a dispatch would.
    setImmediate(done, err as Error, 0);
    return;
  }
  let status = 0;
  let error: Error | null = null;
  stream.on('response', (h) => (status = Number(h[':status'])));
  stream.on('data', () => undefined);
  stream.on('error', (err: Error) => (error = err));
  stream.on('close', () => done(error ?? (status ? null : new Error(`stream closed without a response (code ${stream.rstCode})`)), status));
}

/** Destroys sockets or sessions and resolves once every one has closed. */
function destroyAll(all: Iterable<TLSSocket | ClientHttp2Session>): Promise<unknown> {
  return Promise.all(
    [...all].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.destroyed) return resolve();
          s.once('close', () => resolve());
          s.destroy();
        }),
    ),
  );
}

// ---- watches ----------------------------------------------------------------

const RESOURCE_VERSION = /"resourceVersion":"(\d+)"/;

type OnHead = (ok: boolean, why?: string) => void;
type OnEvent = (delayMs: number) => void;

/** Splits a watch body into lines and times every event line by the clock in its resourceVersion. */
class EventLines {
  #line = '';

  constructor(private readonly onEvent: OnEvent) {}

  push(text: string, now: bigint): void {
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      const line = this.#line + text.slice(from, nl);
      this.#line = '';
      from = nl + 1;
      const rv = RESOURCE_VERSION.exec(line);
      if (rv) this.onEvent(Number(now - BigInt(rv[1]!)) / 1e6);
    }
    this.#line += text.slice(from);
  }
}

/**
 * One watch on its own connection: reads the response head, then de-chunks the
 * body and hands it to EventLines.
 */
class Watch {
  #buffer = '';
  #state: 'head' | 'size' | 'data' | 'crlf' | 'raw' | 'end' = 'head';
  #remaining = 0;
  readonly #events: EventLines;
  readonly socket: TLSSocket;

  constructor(
    target: Target,
    path: string,
    private readonly onHead: OnHead,
    onEvent: OnEvent,
  ) {
    this.#events = new EventLines(onEvent);
    this.socket = rawRequest(target, requestHead(target, path, []));
    this.socket.on('data', (data: Buffer) => this.#read(data.toString('latin1')));
    this.socket.on('error', (err) => this.#fail(err.message));
    this.socket.on('close', () => this.#fail('closed before the response head'));
  }

  #fail(why: string): void {
    if (this.#state === 'head') {
      this.#state = 'end';
      this.onHead(false, why);
    }
  }

  #read(text: string): void {
    const now = process.hrtime.bigint();
    this.#buffer += text;
    for (;;) {
      switch (this.#state) {
        case 'head': {
          const end = this.#buffer.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = this.#buffer.slice(0, end);
          this.#buffer = this.#buffer.slice(end + 4);
          if (!/^HTTP\/1\.1 200 /.test(head)) {
            this.#state = 'end';
            this.onHead(false, head.split('\r\n', 1)[0]);
            this.socket.destroy();
            return;
          }
          this.#state = /\r\ntransfer-encoding:\s*chunked/i.test(head) ? 'size' : 'raw';
          this.onHead(true);
          continue;
        }
        case 'size': {
          const end = this.#buffer.indexOf('\r\n');
          if (end < 0) return;
          this.#remaining = parseInt(this.#buffer.slice(0, end), 16);
          this.#buffer = this.#buffer.slice(end + 2);
          this.#state = this.#remaining === 0 ? 'end' : 'data';
          continue;
        }
        case 'data': {
          const take = Math.min(this.#remaining, this.#buffer.length);
          this.#events.push(this.#buffer.slice(0, take), now);
          this.#buffer = this.#buffer.slice(take);
          this.#remaining -= take;
          if (this.#remaining > 0) return;
          this.#state = 'crlf';
          continue;
        }
        case 'crlf':
          if (this.#buffer.length < 2) return;
          this.#buffer = this.#buffer.slice(2);
          this.#state = 'size';
          continue;
        case 'raw':
          this.#events.push(this.#buffer, now);
          this.#buffer = '';
          return;
        case 'end':
          this.#buffer = '';
          return;
      }
    }
  }
}

/** One watch as a stream of a shared HTTP/2 session: the response head (or with `early`, the request sent), then the lines of its DATA frames. */
function http2Watch(session: ClientHttp2Session, headers: OutgoingHttpHeaders, early: boolean, onHead: OnHead, onEvent: OnEvent): ClientHttp2Stream {
  const events = new EventLines(onEvent);
  let waiting = true;
  const fail = (why: string) => {
    if (waiting) {
      waiting = false;
      onHead(false, why);
    }
  };
  const stream = http2Stream(session, headers);
  const opened = () => {
    if (waiting) {
      waiting = false;
      onHead(true);
    }
  };
  // On a connected session the stream gets its id (and emits 'ready') inside request() already.
  if (early) {
    if (stream.id === undefined) stream.once('ready', opened);
    else setImmediate(opened);
  }
  stream.on('response', (h) => {
    if (h[':status'] !== 200) {
      fail(`HTTP/2 ${h[':status']}`);
      stream.close();
      return;
    }
    opened();
  });
  stream.on('data', (data: Buffer) => events.push(data.toString('latin1'), process.hrtime.bigint()));
  stream.on('error', (err: Error) => fail(err.message));
  stream.on('close', () => fail(`stream closed before the response head (code ${stream.rstCode})`));
  return stream;
}

const watches = new Set<Watch | ClientHttp2Stream>();
const watchSessions = new Set<ClientHttp2Session>();
const eventDelays = new Samples();

/** How watch number `i` is opened: on a connection of its own, or as a stream of session floor(i / http2Streams). */
async function watchOpener(job: WatchOpenJob): Promise<(i: number, onHead: OnHead, onEvent: OnEvent) => Watch | ClientHttp2Stream> {
  const perSession = job.http2Streams;
  if (!perSession) return (_i, onHead, onEvent) => new Watch(job.target, job.path, onHead, onEvent);
  const sessions = await Promise.all(
    Array.from({ length: Math.ceil(job.count / perSession) }, () => http2Session(job.target).then((s) => (watchSessions.add(s), s))),
  );
  for (const session of sessions) {
    const allowed = session.remoteSettings.maxConcurrentStreams ?? Infinity;
    if (allowed < perSession) throw new Error(`the server allows ${allowed} concurrent streams per HTTP/2 connection, not the ${perSession} asked for`);
  }
  const headers = http2HeaderSource(job.target, job.path)(0);
  return (i, onHead, onEvent) => http2Watch(sessions[Math.floor(i / perSession)]!, headers, job.headWithFirstEvent === true, onHead, onEvent);
}

async function watchOpen(job: WatchOpenJob): Promise<WatchOpenResult> {
  const start = performance.now();
  const openOne = await watchOpener(job);
  let opened = 0;
  let failed = 0;
  let started = 0;
  let firstError: string | undefined;
  await new Promise<void>((resolve) => {
    const next = () => {
      if (started >= job.count) {
        if (opened + failed === job.count) resolve();
        return;
      }
      const onHead = (ok: boolean, why?: string) => {
        if (ok) opened++;
        else {
          failed++;
          firstError ??= why;
          watches.delete(watch!);
        }
        next();
      };
      let watch: Watch | ClientHttp2Stream | undefined;
      try {
        watch = openOne(started++, onHead, (delay) => eventDelays.push(delay));
      } catch (err) {
        // An HTTP/2 session that is gone refuses new streams at once.
        setImmediate(onHead, false, (err as Error).message);
        return;
      }
      watches.add(watch);
    };
    for (let i = 0; i < Math.min(job.concurrency, job.count); i++) next();
    if (job.count === 0) resolve();
  });
  return { opened, failed, ...(firstError !== undefined ? { firstError } : {}), seconds: (performance.now() - start) / 1000 };
}

function watchCollect(): WatchCollectResult {
  const result = { events: eventDelays.length, open: watches.size, delay: summarize(eventDelays) };
  eventDelays.clear();
  return result;
}

/** Closes every watch: HTTP/1.1 ones with their connections, HTTP/2 ones with their sessions. */
async function watchClose(): Promise<number> {
  const count = watches.size;
  const sockets = [...watches].flatMap((w) => (w instanceof Watch ? [w.socket] : []));
  const sessions = [...watchSessions];
  watches.clear();
  watchSessions.clear();
  await destroyAll([...sockets, ...sessions]);
  return count;
}

// ---- upgrades -----------------------------------------------------------------

const UPGRADE_HEADERS = [
  'Connection', 'Upgrade',
  'Upgrade', 'SPDY/3.1',
  'X-Stream-Protocol-Version', 'v4.channel.k8s.io',
  'X-Stream-Protocol-Version', 'v3.channel.k8s.io',
  'X-Stream-Protocol-Version', 'v2.channel.k8s.io',
  'X-Stream-Protocol-Version', 'channel.k8s.io',
];

/** Opens one upgrade; resolves at the end of the 101 head with the socket and what followed the head. */
function upgrade(target: Target, path: string): Promise<{ socket: TLSSocket; rest: Buffer; ms: number }> {
  const t0 = performance.now();
  const socket = rawRequest(target, requestHead(target, path, UPGRADE_HEADERS));
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error('no 101 within 10 s')), 10_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const onData = (data: Buffer) => {
      head = Buffer.concat([head, data]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onClose);
      const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      if (!/^HTTP\/1\.1 101 /.test(status)) return fail(new Error(status));
      socket.pause();
      resolve({ socket, rest: head.subarray(end + 4), ms: performance.now() - t0 });
    };
    const onClose = () => fail(new Error('closed before 101'));
    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('close', onClose);
  });
}

async function upgrades(job: UpgradeJob): Promise<UpgradeResult> {
  const latencies = new Samples();
  let failed = 0;
  let firstError: string | undefined;
  const sessions: Promise<void>[] = [];
  const total = Math.max(1, Math.floor((job.durationMs * job.rate) / 1000));
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / job.rate - performance.now();
    if (wait > 0) await sleep(wait);
    sessions.push(
      upgrade(job.target, job.path).then(
        ({ socket, ms }) => {
          latencies.push(ms);
          socket.destroy();
        },
        (err: Error) => {
          failed++;
          firstError ??= err.message;
        },
      ),
    );
  }
  await Promise.all(sessions);
  return { sessions: latencies.length, failed, ...(firstError !== undefined ? { firstError } : {}), latency: summarize(latencies) };
}

async function tunnel(job: TunnelJob): Promise<TunnelResult> {
  const sep = job.path.includes('?') ? '&' : '?';
  const { socket, rest, ms } = await upgrade(job.target, `${job.path}${sep}bytes=${job.bytes}`);
  const t0 = performance.now();
  let received = rest.length;
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (received >= job.bytes) resolve();
    };
    socket.on('data', (data: Buffer) => {
      received += data.length;
      check();
    });
    socket.on('error', reject);
    socket.on('close', () => (received >= job.bytes ? resolve() : reject(new Error(`tunnel closed after ${received} of ${job.bytes} bytes`))));
    socket.resume();
    check();
  });
  const seconds = (performance.now() - t0) / 1000;
  socket.destroy();
  return { bytes: received, seconds, bytesPerSecond: received / seconds, setupMs: ms };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

serveCalls({ closed, open, watchOpen, watchCollect, watchClose, upgrades, tunnel, ping: () => 'pong' });
emitEvent('ready');
