/**
 * `upgrades`: SPDY/3.1 upgrade sessions at a fixed rate, each on a new TLS
 * connection; latency from connect to the end of the 101 head.
 */
import type { TLSSocket } from 'node:tls';
import { Samples, summarize } from '../stats.js';
import { sleep } from '../wait.js';
import { rawRequest, requestHead } from './connect.js';
import type { Target, UpgradeJob, UpgradeResult } from './jobs.js';

const UPGRADE_HEADERS = [
  'Connection', 'Upgrade',
  'Upgrade', 'SPDY/3.1',
  'X-Stream-Protocol-Version', 'v4.channel.k8s.io',
  'X-Stream-Protocol-Version', 'v3.channel.k8s.io',
  'X-Stream-Protocol-Version', 'v2.channel.k8s.io',
  'X-Stream-Protocol-Version', 'channel.k8s.io',
];

/** Opens one upgrade; resolves at the end of the 101 head with the socket and what followed the head. */
export function upgrade(target: Target, path: string): Promise<{ socket: TLSSocket; rest: Buffer; ms: number }> {
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

/** Opens upgrades at the job's rate for its duration, closing each at its 101. */
export async function upgrades(job: UpgradeJob): Promise<UpgradeResult> {
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
