/**
 * Scenario 5: upgrades. exec-style SPDY upgrades at a fixed rate, each on a
 * new TLS connection (setup time to the 101, p50 and p99), then one
 * port-forward tunnel carrying many MiB from the upstream (throughput).
 */
import { cpuMs } from '../children.js';
import { cpuMeter, waitForQuiet } from '../cpu-meter.js';
import { EXEC_PATH, PORTFORWARD_PATH } from '../fixtures.js';
import type { TunnelResult, UpgradeResult } from '../loadgen/jobs.js';
import { DIRECT, newFigure } from '../results.js';
import type { Scenario } from '../scenario.js';
import { eachWindow, noisy } from '../windows.js';

export const upgradesAndTunnel: Scenario = {
  id: 5,
  needs: () => ['kfp', 'nginx'],
  async run(ctx) {
    const { options, loadgen } = ctx;
    options.log(`scenario 5: upgrade setup at ${options.upgradeRate} sessions/s, and ${options.tunnelBytes} bytes through one tunnel`);
    const setup = (p: string) =>
      newFigure({ id: `s5-setup-${p}`, scenario: 5, title: `exec upgrade setup ${p} (new TLS connection → 101) at ${options.upgradeRate}/s`, unit: 'ms', higherIsBetter: false, compare: 'difference', cpuUnit: 'µs/session' });
    const [s50, s99] = [setup('p50'), setup('p99')];
    const bw = newFigure({ id: 's5-tunnel', scenario: 5, title: `port-forward tunnel, ${(options.tunnelBytes / 2 ** 20).toFixed(0)} MiB upstream → client`, unit: 'MiB/s', higherIsBetter: true, compare: 'ratio', cpuUnit: 'µs/MiB' });
    await eachWindow(options.rounds, await ctx.servers.compared(), async (server, round) => {
      await waitForQuiet(options.quietMs);
      const meter = cpuMeter(ctx, server);
      let cpu0 = cpuMs(server.pids());
      const up = await loadgen.call<UpgradeResult>('upgrades', { target: ctx.target(server), path: EXEC_PATH, rate: options.upgradeRate, durationMs: options.windowMs });
      const sessionUs = ((cpuMs(server.pids()) - cpu0) * 1000) / Math.max(1, up.sessions);
      if (up.failed || up.sessions === 0) ctx.problem(`s5 ${server.name}: ${up.failed} upgrades failed (${up.firstError ?? '?'})`);
      const own = server.name === DIRECT ? undefined : sessionUs;
      const { foreignCores } = meter.read(1);
      meter.off();
      const upExtra = { sessions: up.sessions, failed: up.failed, foreignCores };
      s50.samples.push({ config: server.name, round, value: up.latency.p50, cpuUs: own, extra: upExtra });
      s99.samples.push({ config: server.name, round, value: up.latency.p99, cpuUs: own, extra: upExtra });
      cpu0 = cpuMs(server.pids());
      const t = await loadgen.call<TunnelResult>('tunnel', { target: ctx.target(server), path: PORTFORWARD_PATH, bytes: options.tunnelBytes });
      const mib = t.bytes / 2 ** 20;
      const tunnelUs = server.name === DIRECT ? undefined : ((cpuMs(server.pids()) - cpu0) * 1000) / mib;
      bw.samples.push({ config: server.name, round, value: mib / t.seconds, cpuUs: tunnelUs, extra: { seconds: t.seconds, setupMs: t.setupMs } });
      options.log(`  round ${round + 1} ${server.name}: setup p50 ${up.latency.p50.toFixed(2)} ms p99 ${up.latency.p99.toFixed(2)} ms; tunnel ${(mib / t.seconds).toFixed(0)} MiB/s${noisy(foreignCores)}`);
    });
    return { figures: [s50, s99, bw] };
  },
};
