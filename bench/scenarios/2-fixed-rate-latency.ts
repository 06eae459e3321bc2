/**
 * Scenario 2: request latency at a fixed rate, half of kube-front-proxy's
 * scenario-1 maximum, direct, through kube-front-proxy and through nginx:
 * p50 and p99, and the percentile curves for the plot.
 */
import { cpuMeter, waitForQuiet } from '../cpu-meter.js';
import { POD_PATH } from '../fixtures.js';
import type { OpenJob, OpenResult } from '../loadgen/jobs.js';
import { KFP, newFigure } from '../results.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { median } from '../stats.js';
import { CurveWindows, checkThroughput, closedWindow, eachWindow, noisy, throughputExtra } from '../windows.js';

export const fixedRateLatency: Scenario = {
  id: 2,
  needs: () => ['kfp', 'nginx'],
  async run(ctx) {
    const { options } = ctx;
    const kfpMax = await proxyMaximum(ctx);
    const rate = Math.max(10, Math.floor(kfpMax / 2));
    options.log(`scenario 2: latency at a fixed ${rate} req/s (half the proxy's max)`);
    const notes = [`Scenario 2 ran at ${rate} req/s, half of kube-front-proxy's scenario-1 median (${kfpMax.toFixed(0)} req/s), on ${options.connections} connections.`];
    const p50 = newFigure({ id: 's2-p50', scenario: 2, title: `p50 latency at ${rate} req/s`, unit: 'ms', higherIsBetter: false, compare: 'difference', cpuUnit: 'µs/req' });
    const p99 = newFigure({ id: 's2-p99', scenario: 2, title: `p99 latency at ${rate} req/s`, unit: 'ms', higherIsBetter: false, compare: 'difference', cpuUnit: 'µs/req' });
    const curves = new CurveWindows();
    await eachWindow(options.rounds, await ctx.servers.compared(), async (server, round) => {
      await waitForQuiet(options.quietMs);
      const cpu = cpuMeter(ctx, server);
      const job: OpenJob = { target: ctx.target(server), path: POD_PATH, connections: options.connections, rate, warmupMs: options.warmupMs, durationMs: options.windowMs };
      const r = await ctx.loadgen.call<OpenResult>('open', job).finally(() => cpu.off());
      const c = cpu.read(r.requests);
      checkThroughput(ctx, `s2 ${server.name}`, r);
      const extra = { ...throughputExtra(r, c), achievedRate: r.rps, lagP99ms: r.lagP99, lagMaxMs: r.lagMax };
      p50.samples.push({ config: server.name, round, value: r.latency.p50, cpuUs: c.proxyUs, extra });
      p99.samples.push({ config: server.name, round, value: r.latency.p99, cpuUs: c.proxyUs, extra });
      curves.add(server.name, r.latency);
      options.log(`  round ${round + 1} ${server.name}: p50 ${r.latency.p50.toFixed(3)} ms, p99 ${r.latency.p99.toFixed(3)} ms (schedule lag p99 ${r.lagP99.toFixed(2)} ms)${noisy(c.foreignCores)}`);
    });
    return { figures: [p50, p99], curves: { s2: curves.medians() }, notes };
  },
};

/** kube-front-proxy's scenario-1 median, or one closed-loop window of its own when scenario 1 did not run. */
async function proxyMaximum(ctx: ScenarioContext): Promise<number> {
  const s1 = ctx.earlier.find((f) => f.id === 's1');
  const max = median(s1?.samples.filter((s) => s.config === KFP).map((s) => s.value) ?? []);
  if (!Number.isNaN(max)) return max;
  const { options } = ctx;
  const w = await closedWindow(ctx, await ctx.servers.get('kfp'), { path: POD_PATH, connections: options.connections, warmupMs: options.warmupMs, durationMs: options.windowMs });
  return w.result.rps;
}
