/**
 * `watchChurn`: watches that come and go, as controllers restarting and
 * kubectl --watch sessions do: opened at a fixed rate, each on a connection
 * of its own, and closed by the client when its life is over. A watch without
 * a 200 head, or one the other side ends before then, is an error.
 */
import { sleep } from '../wait.js';
import type { WatchChurnJob, WatchChurnResult } from './jobs.js';
import { Watch } from './watch-readers.js';

/** Opens the job's watches on schedule and resolves once the last one has lived its life. */
export async function watchChurn(job: WatchChurnJob): Promise<WatchChurnResult> {
  let opened = 0;
  let failed = 0;
  let endedEarly = 0;
  let firstError: string | undefined;
  const lives: Promise<void>[] = [];
  const total = Math.floor((job.durationMs * job.rate) / 1000);
  const start = performance.now();
  const one = () =>
    new Promise<void>((resolve) => {
      let state: 'opening' | 'open' | 'closing' = 'opening';
      const watch = new Watch(
        job.target,
        job.path,
        (ok, why) => {
          if (!ok) {
            failed++;
            firstError ??= why;
            return;
          }
          opened++;
          state = 'open';
          setTimeout(() => {
            state = 'closing';
            watch.socket.destroy();
          }, job.lifeMs);
        },
        () => undefined,
      );
      // A watch that failed at its head was counted there; only an open one can end early.
      watch.socket.once('close', () => {
        if (state === 'open') {
          endedEarly++;
          firstError ??= 'a watch ended before its life was over';
        }
        resolve();
      });
    });
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / job.rate - performance.now();
    if (wait > 0) await sleep(wait);
    lives.push(one());
  }
  await Promise.all(lives);
  return { opened, failed, endedEarly, ...(firstError !== undefined ? { firstError } : {}) };
}
