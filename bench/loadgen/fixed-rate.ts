/**
 * `open`: a fixed arrival rate on a 1 ms schedule, never waiting for answers
 * (requests beyond the N connections queue in the pool, and that wait is
 * counted); latency from the moment a request is issued to its last byte.
 * The schedule lag (issue time minus intended time) is reported so that a
 * generator that fell behind shows.
 */
import { emitEvent } from '../ipc.js';
import { Samples, percentile, summarize } from '../stats.js';
import { sleep } from '../wait.js';
import { fire, headerSource, pool } from './connect.js';
import type { OpenJob, OpenResult } from './jobs.js';

/** Runs the job's fixed-rate warm-up, then its measured window between `mark` events. */
export async function open(job: OpenJob): Promise<OpenResult> {
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
    lagMax: lag.length ? lag[lag.length - 1] : Number.NaN,
  };
}
