/** `tunnel`: one upgrade carrying `bytes` from the upstream; bytes per second. */
import type { TunnelJob, TunnelResult } from './jobs.js';
import { upgrade } from './upgrades.js';

/** Reads the job's bytes through one port-forward tunnel, timed from the 101 to the last byte. */
export async function tunnel(job: TunnelJob): Promise<TunnelResult> {
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
