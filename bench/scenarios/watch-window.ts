/**
 * One window of scenario 4 for one configuration: open the watches and read
 * the RSS they cost, deliver events and time them, then close every watch.
 */
import { cpuMs, rssKiB } from '../children.js';
import { cpuMeter, waitForQuiet } from '../cpu-meter.js';
import { POD_PATH, WATCH_PATH } from '../fixtures.js';
import type { WatchCollectResult, WatchOpenResult } from '../loadgen/jobs.js';
import { DIRECT, type Figure } from '../results.js';
import type { ScenarioContext } from '../scenario.js';
import type { Server } from '../servers/server.js';
import { sleep, until } from '../wait.js';
import { closedWindow, noisy, type CurveWindows } from '../windows.js';

/** A row of scenario 4. */
export interface WatchConfig {
  readonly name: string;
  /** The server for the window of `round`; none for direct. */
  readonly start?: (round: number) => Promise<Server>;
  readonly h2?: boolean;
  /** The server holds a watch's response head back until its first event (nginx over HTTP/2). */
  readonly headWithFirstEvent?: boolean;
}

export interface WatchFigures {
  readonly rss: Figure;
  readonly d50: Figure;
  readonly d99: Figure;
  readonly curves: CurveWindows;
}

interface Window {
  readonly config: WatchConfig;
  readonly server: Server;
  readonly round: number;
  /** Watches to open. */
  readonly count: number;
  /** HTTP/2 sessions they take. */
  readonly sessions: number;
}

/** Measures one window into `figures`; closes the watches (and a fresh server) whatever happened. */
export async function watchWindow(ctx: ScenarioContext, w: Window, figures: WatchFigures): Promise<void> {
  const { config, server, round } = w;
  try {
    const { opened, before, after } = await openWatches(ctx, w);
    const perWatch = (after - before) / Math.max(1, opened.opened);
    if (server.name !== DIRECT) {
      figures.rss.samples.push({
        config: config.name,
        round,
        value: perWatch,
        extra: { rssBeforeKiB: before, rssAfterKiB: after, watches: opened.opened, openSeconds: opened.seconds, ...(config.h2 && { http2Sessions: w.sessions }) },
      });
    }
    const { got, emitted, extra } = await deliverEvents(ctx, w);
    figures.d50.samples.push({ config: config.name, round, value: got.delay.p50, extra });
    figures.d99.samples.push({ config: config.name, round, value: got.delay.p99, extra });
    figures.curves.add(config.name, got.delay);
    ctx.options.log(
      `  round ${round + 1} ${config.name}: ${opened.opened} watches in ${opened.seconds.toFixed(1)} s` +
        `${server.name === DIRECT ? '' : `, RSS +${perWatch.toFixed(1)} KiB/watch`}` +
        `, delay p50 ${got.delay.p50.toFixed(2)} ms p99 ${got.delay.p99.toFixed(2)} ms (${got.events}/${emitted} events)${noisy(extra.foreignCores)}`,
    );
  } finally {
    await closeWatches(ctx, w);
  }
}

/** Opens the watches once the server has served requests, and reads its RSS before and after. */
async function openWatches(ctx: ScenarioContext, { config, server, count }: Window) {
  // Load the code paths first, so the baseline is a proxy that has served requests.
  await closedWindow(ctx, server, { path: POD_PATH, connections: 4, warmupMs: 0, durationMs: 200, ...(config.h2 && { http2Sessions: 4 }) });
  await sleep(500);
  const before = rssKiB(server.pids());
  const opened = await ctx.loadgen.call<WatchOpenResult>('watchOpen', {
    target: ctx.target(server),
    path: WATCH_PATH,
    count,
    concurrency: 64,
    ...(config.h2 && { http2Streams: ctx.options.http2Streams }),
    ...(config.headWithFirstEvent && { headWithFirstEvent: true }),
  });
  if (opened.failed) ctx.problem(`s4 ${config.name}: ${opened.failed} of ${count} watches failed (${opened.firstError ?? '?'})`);
  // A window whose watches the upstream never all sees is a problem of that window (listed in
  // RESULTS.md, and the smoke test fails on it), not the end of a 30-minute run.
  await until(async () => (await ctx.upstream.call<number>('watchCount')) >= opened.opened, 60_000, 'the upstream to see every watch').catch((err: Error) =>
    ctx.problem(`s4 ${config.name}: ${err.message} (${opened.opened} opened)`),
  );
  await sleep(Math.min(2000, ctx.options.windowMs));
  return { opened, before, after: rssKiB(server.pids()) };
}

/** Has the upstream emit events across the watches for a window, and collects their delays. */
async function deliverEvents(ctx: ScenarioContext, { config, server }: Window) {
  const { options, loadgen, upstream } = ctx;
  await waitForQuiet(options.quietMs);
  await loadgen.call('watchCollect');
  const meter = cpuMeter(ctx, server);
  const cpu0 = cpuMs(server.pids());
  const emitted = await upstream.call<number>('emit', { rate: options.watchEventRate, durationMs: options.windowMs });
  await sleep(500);
  const cpu1 = cpuMs(server.pids());
  const { foreignCores } = meter.read(1);
  meter.off();
  const got = await loadgen.call<WatchCollectResult>('watchCollect');
  if (got.events !== emitted) ctx.problem(`s4 ${config.name}: ${emitted} events sent, ${got.events} delivered`);
  const extra = { events: got.events, emitted, proxyCpuUsPerEvent: ((cpu1 - cpu0) * 1000) / Math.max(1, emitted), foreignCores };
  return { got, emitted, extra };
}

/** Closes every watch, stops a fresh server, and waits for the upstream to see them gone. */
async function closeWatches(ctx: ScenarioContext, { config, server }: Window): Promise<void> {
  await ctx.loadgen.call('watchClose');
  if (server.name !== DIRECT && ctx.options.freshWatchServers) await server.stop();
  await until(async () => (await ctx.upstream.call<number>('watchCount')) === 0, 30_000, 'watches to close at the upstream').catch(async (err: Error) => {
    ctx.problem(`s4 ${config.name}: ${err.message}`);
    await ctx.upstream.call('endWatches');
  });
}
