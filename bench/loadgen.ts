/**
 * The load generator (a child process, outside every measured process).
 * It runs one job at a time for the harness and answers with what it measured:
 *
 * - `closed`: N keep-alive connections (undici Pool, no pipelining), each sending
 *   its next request as soon as the previous one is answered: the maximum rate.
 *   With `newConnectionPerRequest`, every request opens a fresh TLS connection
 *   with no session resumption, as a new kubectl process does.
 * - `open`: a fixed arrival rate on a 1 ms schedule, never waiting for answers
 *   (requests beyond the N connections queue in the pool, and that wait is
 *   counted); latency from the moment a request is issued to its last byte.
 *   The schedule lag (issue time minus intended time) is reported so that a
 *   generator that fell behind shows.
 * - `watchOpen`/`watchCollect`/`watchClose`: many idle watches on raw TLS
 *   sockets (one connection each, as HTTP/1.1 clients hold them), then the
 *   delivery delay of each event, read from the upstream's monotonic clock in
 *   its resourceVersion (CLOCK_MONOTONIC is one clock for every process).
 * - `upgrades`: SPDY/3.1 upgrade sessions at a fixed rate, each on a new TLS
 *   connection; latency from connect to the end of the 101 head.
 * - `tunnel`: one upgrade carrying `bytes` from the upstream; bytes per second.
 *
 * Around the measured part of `closed` and `open` it sends `mark` events, so
 * the harness reads the proxy's CPU time over exactly that window.
 */
import { readFileSync } from 'node:fs';
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

async function closed(job: ClosedJob): Promise<ThroughputResult> {
  const p = pool(job.target, job.connections, job.newConnectionPerRequest === true);
  const headersFor = headerSource(job.target);
  const reset = job.newConnectionPerRequest === true;
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

  const loop = () => {
    if (phase === 'stop') {
      if (--running === 0) finished();
      return;
    }
    const startedIn = phase;
    const t0 = performance.now();
    fire(p, job.path, headersFor(issued++), reset, (err, status) => {
      if (err) {
        errors++;
        firstError ??= `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`;
      } else if (startedIn === 'measure' && phase === 'measure') {
        latencies.push(performance.now() - t0);
        if (status < 200 || status > 299) non2xx++;
      } else if (startedIn === 'warmup' && ++warmAnswered >= warmupRequests) warmedUp();
      // A dead target must not spin: back off a little on errors.
      if (err) setTimeout(loop, 10);
      else loop();
    });
  };
  for (let i = 0; i < job.connections; i++) loop();

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
  await p.destroy();
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

// ---- watches ----------------------------------------------------------------

const RESOURCE_VERSION = /"resourceVersion":"(\d+)"/;

/**
 * One watch on its own connection: reads the response head, then de-chunks the
 * body and times every event line by the clock in its resourceVersion.
 */
class Watch {
  #buffer = '';
  #state: 'head' | 'size' | 'data' | 'crlf' | 'raw' | 'end' = 'head';
  #remaining = 0;
  #line = '';
  readonly socket: TLSSocket;

  constructor(
    target: Target,
    path: string,
    private readonly onHead: (ok: boolean, why?: string) => void,
    private readonly onEvent: (delayMs: number) => void,
  ) {
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
          this.#body(this.#buffer.slice(0, take), now);
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
          this.#body(this.#buffer, now);
          this.#buffer = '';
          return;
        case 'end':
          this.#buffer = '';
          return;
      }
    }
  }

  #body(text: string, now: bigint): void {
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

const watches = new Set<Watch>();
const eventDelays = new Samples();

async function watchOpen(job: WatchOpenJob): Promise<WatchOpenResult> {
  const start = performance.now();
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
      started++;
      const watch = new Watch(
        job.target,
        job.path,
        (ok, why) => {
          if (ok) opened++;
          else {
            failed++;
            firstError ??= why;
            watches.delete(watch);
          }
          next();
        },
        (delay) => eventDelays.push(delay),
      );
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

async function watchClose(): Promise<number> {
  const all = [...watches];
  watches.clear();
  await Promise.all(
    all.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.socket.destroyed) return resolve();
          w.socket.once('close', () => resolve());
          w.socket.destroy();
        }),
    ),
  );
  return all.length;
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
