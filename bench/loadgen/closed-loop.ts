/**
 * `closed`: N keep-alive connections (an undici Pool of one each, no pipelining),
 * each sending its next request as soon as the previous one is answered: the maximum rate.
 * With `newConnectionPerRequest`, every request opens a fresh TLS connection
 * with no session resumption, as a new kubectl process does. With
 * `http2Sessions`, the N requests in flight are N streams spread over that
 * many HTTP/2 sessions (node:http2) instead.
 */
import { emitEvent } from '../ipc.js';
import { Samples, summarize } from '../stats.js';
import { sleep } from '../wait.js';
import { destroyAll, fire, headerSource, pool, tokenCount, type Done } from './connect.js';
import { fireHttp2, http2HeaderSource, http2Session } from './http2.js';
import type { ClosedJob, ThroughputResult } from './jobs.js';

/** Where a closed loop sends its `n`-th request from `lane` (one connection, or one stream slot of an HTTP/2 session). */
interface Sender {
  fire(lane: number, n: number, done: Done): void;
  close(): Promise<unknown>;
}

/** Lane i sends on connection i (a pool of one), so a lane's requests reach the same proxy worker every time. */
function poolSender(job: ClosedJob): Sender {
  const reset = job.newConnectionPerRequest === true;
  const lanes = Array.from({ length: job.connections }, () => pool(job.target, 1, reset));
  const headersFor = headerSource(job.target);
  return { fire: (lane, n, done) => fire(lanes[lane], job.path, headersFor(n), reset, done), close: () => Promise.all(lanes.map((p) => p.destroy())) };
}

/**
 * Request numbers by lane. With a token list, lane i sends only tokens i, i + N, i + 2N, …
 * (N lanes), wrapping within the list: each token comes on one connection, as a kubectl
 * user's does, and so meets one proxy worker and one token cache. Sent round-robin over
 * every connection, a token met a random worker, and with two workers about a quarter of
 * a "cache warm" window was verified cold.
 */
function laneNumbers(lanes: number, tokens: number): (lane: number) => number {
  const sent = new Array<number>(lanes).fill(0);
  return (lane) => {
    let n = lane + lanes * sent[lane]++;
    if (tokens > 0 && n >= tokens) {
      sent[lane] = 1;
      n = lane;
    }
    return n;
  };
}

/** Lane i sends on session i mod `sessions`: `connections / sessions` streams in flight on each. */
async function http2Sender(job: ClosedJob, sessions: number): Promise<Sender> {
  const open = await Promise.all(Array.from({ length: sessions }, () => http2Session(job.target)));
  const headersFor = http2HeaderSource(job.target, job.path);
  return { fire: (lane, n, done) => fireHttp2(open[lane % open.length], headersFor(n), done), close: () => destroyAll(open) };
}

/** Runs the job's closed loop; sends `mark` events around the measured window. */
export async function closed(job: ClosedJob): Promise<ThroughputResult> {
  const sender = job.http2Sessions ? await http2Sender(job, job.http2Sessions) : poolSender(job);
  const latencies = new Samples();
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  const next = laneNumbers(job.connections, tokenCount(job.target));
  // Warm once every lane has had its share answered: a pass over its own tokens.
  const laneWarmup = Math.ceil((job.warmupRequests ?? 0) / job.connections);
  const warmAnswered = new Array<number>(job.connections).fill(0);
  let lanesWarm = 0;
  let errors = 0;
  let non2xx = 0;
  let firstError: string | undefined;
  let running = job.connections;

  let finished!: () => void;
  const allStopped = new Promise<void>((resolve) => (finished = resolve));
  let warmedUp!: () => void;
  const warm = new Promise<void>((resolve) => (warmedUp = resolve));
  if (laneWarmup === 0) warmedUp();

  const loop = (lane: number) => {
    if (phase === 'stop') {
      if (--running === 0) finished();
      return;
    }
    const startedIn = phase;
    const t0 = performance.now();
    sender.fire(lane, next(lane), (err, status) => {
      if (err) {
        errors++;
        firstError ??= `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`;
      } else if (startedIn === 'measure' && phase === 'measure') {
        latencies.push(performance.now() - t0);
        if (status < 200 || status > 299) non2xx++;
      } else if (startedIn === 'warmup' && ++warmAnswered[lane] === laneWarmup && ++lanesWarm === job.connections) warmedUp();
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
  const measureStart = performance.now();
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
