/**
 * Scenario 8: the soak of issue 15. A fresh kube-front-proxy holds `watches`
 * idle watches while a steady mixed load runs through it for `soakMs`: reads
 * at a fixed rate, watches opening and closing, exec sessions. A few hundred
 * idle watches go straight to the upstream in the same seconds, so the
 * proxied event delay is compared with a direct one that saw the same load.
 * Figures: every error, the RSS slope after warm-up, event delay proxied and
 * direct, and the proxy's descriptors before, at peak and after.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuMs } from '../children.js';
import { EXEC_PATH, POD_PATH, WATCH_PATH } from '../fixtures.js';
import { busyStretches, type ClockWindow } from '../profile.js';
import type { OpenResult, UpgradeResult, WatchChurnResult, WatchCollectResult, WatchOpenResult } from '../loadgen/jobs.js';
import { DIRECT, KFP, newFigure, type Figure } from '../results.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { startProxy } from '../servers/kube-front-proxy.js';
import type { Server } from '../servers/server.js';
import { sleep, until } from '../wait.js';
import { closedWindow } from '../windows.js';
import { watchCount } from './4-idle-watches.js';
import { mainThreadProfiles } from './cpu-profile.js';
import { TreeMeter, descriptorKinds, settleDescriptors, total } from './soak-meter.js';

/** RSS counts as flat under this slope, as % of the RSS a minute (bench/README.md says why). */
export const FLAT_RSS_PCT_PER_MIN = 0.5;
/** Keep-alive connections the fixed-rate reads are spread over. */
const READ_CONNECTIONS = 16;

export const soak: Scenario = {
  id: 8,
  // A fresh proxy of its own: its RSS and descriptors are the soak's alone.
  needs: () => [],
  async run(ctx) {
    const { options } = ctx;
    const load = options.soakLoad;
    const notes: string[] = [];
    const reserve = 200 + 2 * (READ_CONNECTIONS + Math.ceil(load.watchesPerSecond * (load.watchLifeMs / 1000 + 1)));
    // Only kube-front-proxy runs here: over the h2 upstream its watches are streams on a few shared connections.
    const count = watchCount(options, notes, 8, reserve, options.upstreamHttp2 === true ? 1 : 2);
    const warmupMs = Math.min(0.2 * options.soakMs, 120_000);
    options.log(`scenario 8: soak for ${(options.soakMs / 60_000).toFixed(1)} min, ${count} idle watches through the proxy and ${load.directWatches} direct`);
    const profileDir = options.soakProfile ? join(options.outDir, 'soak-profile') : undefined;
    if (profileDir) {
      rmSync(profileDir, { recursive: true, force: true });
      mkdirSync(profileDir, { recursive: true });
    }
    const server = await ctx.servers.fresh((env) => startProxy(env, `${KFP} soak`, { profileDir }));
    let stopped = false;
    try {
      // Load the code paths first, so the baseline is a proxy that has served requests.
      await closedWindow(ctx, server, { path: POD_PATH, connections: 4, warmupMs: 0, durationMs: 200 });
      await sleep(500);
      const upstreamPort = Number(new URL(ctx.env.upstreamURL).port);
      const baseline = descriptorKinds(server.pids(), upstreamPort);
      const opened = await openIdleWatches(ctx, server, count);
      const cpu0 = cpuMs(server.pids());
      const meter = new TreeMeter(server);
      const run = await steadyLoad(ctx, server, meter, warmupMs);
      const cpuCores = (cpuMs(server.pids()) - cpu0) / options.soakMs;
      const idle = await Promise.all(['proxied', 'direct'].map((group) => ctx.loadgen.call<WatchCollectResult>('watchCollect', { group })));
      await ctx.loadgen.call('watchClose');
      await until(async () => (await ctx.upstream.call<number>('watchCount')) === 0, 60_000, 'the soak\'s watches to close at the upstream').catch((err: Error) => ctx.problem(`s8: ${err.message}`));
      // One descriptor a process may stay open past the wait: an upstream connection kept alive for the next request.
      const allowance = server.pids().length;
      const fds = { baseline: total(baseline), allowance, ...(await settleDescriptors(server, upstreamPort, baseline, allowance, options.soakSettleMs)) };
      const measured = (options.soakMs - warmupMs) / 60_000;
      const figures = soakFigures(ctx, { opened, run, idle: idle as [WatchCollectResult, WatchCollectResult], meter, warmupMs, fds });
      notes.push(
        `Scenario 8 (soak, issue 15): one fresh kube-front-proxy (${server.workers ?? 1} worker process(es)) for ${(options.soakMs / 60_000).toFixed(1)} min: ` +
          `${count} idle watches through it (HTTP/1.1, a connection each) and ${load.directWatches} straight to the upstream, ${options.watchEventRate} events/s round-robin across all open watches; ` +
          `beside them ${load.readsPerSecond} Pod GETs/s (fixed rate, ${READ_CONNECTIONS} keep-alive connections), ${load.watchesPerSecond} watches opened a second each closed by the client after ${load.watchLifeMs / 1000} s, ` +
          `and ${load.execsPerSecond} exec (SPDY) session(s) a second, each on a new TLS connection, all through the proxy. The proxy used ${cpuCores.toFixed(2)} core(s) on average. ` +
          `Warm-up: the first ${(warmupMs / 1000).toFixed(0)} s (20% of the run, 2 minutes at most); RSS (every process of the proxy) and descriptors read every ${options.soakSampleMs / 1000} s; ` +
          `event delay from after the warm-up, direct and proxied watches read by the same load-generator process. ` +
          `RSS counts as flat under ${FLAT_RSS_PCT_PER_MIN}% a minute: over the ${measured.toFixed(1)} measured minutes that is under ${(FLAT_RSS_PCT_PER_MIN * measured).toFixed(1)}% growth, inside the steps a V8 heap takes as it sizes itself, ` +
          `while a leak of ${leakBytesPerRead(figures.meanRssKiB, load.readsPerSecond)} bytes per read at this rate would cross it.`,
      );
      if (profileDir) {
        await server.stop();
        stopped = true;
        notes.push(stretchesNote(ctx, profileDir, server.pid, run.measured));
      }
      return { figures: figures.list, notes };
    } finally {
      await ctx.loadgen.call('watchClose').catch(() => undefined);
      if (!stopped) await server.stop();
    }
  },
};

/**
 * --soak-profile: the busy stretches of the measured minutes, by what they were
 * spent on (bench/profile.ts); the whole of it goes to soak-profile/stretches.json.
 */
function stretchesNote(ctx: ScenarioContext, profileDir: string, primary: number | undefined, window: ClockWindow): string {
  const files = mainThreadProfiles(profileDir, primary);
  if (!files.length) {
    ctx.problem('s8: the soak proxy wrote no .cpuprofile');
    return 'Scenario 8 profile: none written.';
  }
  const stretches = busyStretches(files, [1, 2, 5], window);
  writeFileSync(join(profileDir, 'stretches.json'), JSON.stringify(stretches, null, 2));
  const seconds = (window.toUs - window.fromUs) / 1e6;
  const pct = (n: number, digits = 0) => `${(n * 100).toFixed(digits)}%`;
  // Each worker's profile covers the whole window: their stretches share files.length × the window.
  const ofTime = (ms: number) => pct(ms / (seconds * 1000 * files.length), 2);
  const line = stretches
    .map((s) => `≥ ${s.minMs} ms: ${s.count} (${ofTime(s.ms)} of the workers' time; ${s.areas.slice(0, 4).map((a) => `${a.name} ${pct(a.share)}`).join(', ')})`)
    .join('; ');
  const longest = stretches[0].longest.map((l) => `${l.ms.toFixed(1)} ms mostly ${l.area} (${l.top})`).join('; ');
  return (
    `Scenario 8 profile (--soak-profile: the proxy under --cpu-prof at 500 µs, ${files.length} worker profile(s), the ${(seconds / 60).toFixed(1)} measured minutes): ` +
    `stretches in which a worker never went idle, so an event arriving in one waits for its end: ${line}. Longest: ${longest}. ` +
    // V8 holds every sample in memory until the profile is written, so the process grows for as long as it is profiled.
    `The profiler holds its samples in the process until it stops, so this run's RSS slope measures the profiler, not the proxy: run without --soak-profile for that figure.`
  );
}

/** Bytes a read would have to leak to make the RSS slope cross the flat threshold. */
function leakBytesPerRead(meanRssKiB: number, readsPerSecond: number): string {
  return Math.round(((FLAT_RSS_PCT_PER_MIN / 100) * meanRssKiB * 1024) / (readsPerSecond * 60)).toLocaleString('en-US');
}

/** The idle watches: `count` through the proxy and the direct control, in groups timed apart. */
async function openIdleWatches(ctx: ScenarioContext, server: Server, count: number) {
  const open = (group: string, s: Server, n: number) => ctx.loadgen.call<WatchOpenResult>('watchOpen', { target: ctx.target(s), path: WATCH_PATH, count: n, concurrency: 64, group });
  const proxied = await open('proxied', server, count);
  const direct = await open('direct', ctx.servers.direct, ctx.options.soakLoad.directWatches);
  const want = proxied.opened + direct.opened;
  await until(async () => (await ctx.upstream.call<number>('watchCount')) >= want, 60_000, 'the upstream to see every soak watch');
  ctx.options.log(`  ${proxied.opened} watches through the proxy in ${proxied.seconds.toFixed(1)} s, ${direct.opened} direct`);
  return { proxied, direct };
}

/** What the steady load found: each job's result. */
export interface SteadyRun {
  /** The measured part (after warm-up) on the monotonic clock, for a profile's samples. */
  readonly measured: ClockWindow;
  readonly reads: OpenResult;
  readonly execs: UpgradeResult;
  readonly churn: WatchChurnResult;
  readonly emitted: number;
}

/** Runs the mixed load and the events for soakMs, reading the proxy every soakSampleMs; drops the warm-up's event delays. */
async function steadyLoad(ctx: ScenarioContext, server: Server, meter: TreeMeter, warmupMs: number): Promise<SteadyRun> {
  const { options, loadgen, upstream } = ctx;
  const load = options.soakLoad;
  const durationMs = options.soakMs;
  const target = ctx.target(server);
  const start = performance.now();
  const jobs = Promise.all([
    loadgen.call<OpenResult>('open', { target, path: POD_PATH, connections: READ_CONNECTIONS, rate: load.readsPerSecond, warmupMs: 0, durationMs }),
    loadgen.call<UpgradeResult>('upgrades', { target, path: EXEC_PATH, rate: load.execsPerSecond, durationMs }),
    loadgen.call<WatchChurnResult>('watchChurn', { target, path: WATCH_PATH, rate: load.watchesPerSecond, lifeMs: load.watchLifeMs, durationMs }),
    upstream.call<number>('emit', { rate: options.watchEventRate, durationMs }),
  ]);
  let done = false;
  void jobs.finally(() => (done = true)).catch(() => undefined);
  let warm = false;
  let fromUs = nowUs();
  let logged = 0;
  while (!done) {
    const s = meter.sample();
    const elapsed = performance.now() - start;
    if (!warm && elapsed >= warmupMs) {
      warm = true;
      fromUs = nowUs();
      await Promise.all(['proxied', 'direct'].map((group) => loadgen.call('watchCollect', { group })));
    }
    if (elapsed - logged >= 60_000) {
      logged = elapsed;
      options.log(`  ${(elapsed / 60_000).toFixed(1)} min: RSS ${(s.rssKiB / 1024).toFixed(0)} MiB, ${s.fds} descriptors`);
    }
    await Promise.race([jobs, sleep(options.soakSampleMs)]).catch(() => undefined);
  }
  const [reads, execs, churn, emitted] = await jobs;
  return { measured: { fromUs, toUs: nowUs() }, reads, execs, churn, emitted };
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

interface SoakFound {
  readonly opened: Awaited<ReturnType<typeof openIdleWatches>>;
  readonly run: SteadyRun;
  /** The proxied and the direct group's events after warm-up. */
  readonly idle: readonly [WatchCollectResult, WatchCollectResult];
  readonly meter: TreeMeter;
  readonly warmupMs: number;
  readonly fds: Awaited<ReturnType<typeof settleDescriptors>> & { readonly baseline: number; readonly allowance: number };
}

/** The soak's figures from what it found; every error is also a problem of the run. */
function soakFigures(ctx: ScenarioContext, f: SoakFound): { list: Figure[]; meanRssKiB: number } {
  const { run, idle, opened } = f;
  const [proxied, direct] = idle;
  const errors = {
    readErrors: run.reads.errors,
    readsNot2xx: run.reads.non2xx,
    execFailed: run.execs.failed,
    churnWatchFailed: run.churn.failed,
    churnWatchEndedEarly: run.churn.endedEarly,
    idleWatchFailed: opened.proxied.failed + opened.direct.failed,
    idleWatchEndedEarly: proxied.ended + direct.ended,
  };
  const total = Object.values(errors).reduce((a, b) => a + b, 0);
  const firstError = run.reads.firstError ?? run.execs.firstError ?? run.churn.firstError ?? opened.proxied.firstError ?? opened.direct.firstError;
  if (total) ctx.problem(`s8: ${total} errors (${Object.entries(errors).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(', ')}${firstError ? `; first: ${firstError}` : ''})`);

  const minutes = (ctx.options.soakMs / 60_000).toFixed(1);
  const err = newFigure({ id: 's8-errors', scenario: 8, title: `soak errors in ${minutes} min (reads, watches, exec)`, unit: 'errors', higherIsBetter: false, compare: 'difference' });
  err.samples.push({ config: KFP, round: 0, value: total, extra: { ...errors, reads: run.reads.requests, readP99ms: run.reads.latency.p99, readLagP99ms: run.reads.lagP99, execs: run.execs.sessions, churnWatches: run.churn.opened } });

  const rss = f.meter.rssSlope(f.warmupMs);
  const slope = newFigure({ id: 's8-rss-slope', scenario: 8, title: `soak RSS slope after warm-up (least squares, whole process tree)`, unit: 'KiB/min', higherIsBetter: false, compare: 'difference' });
  slope.samples.push({ config: KFP, round: 0, value: rss.kibPerMin, extra: { pctPerMin: rss.pctPerMin, thresholdPctPerMin: FLAT_RSS_PCT_PER_MIN, meanRssKiB: rss.meanKiB, samples: rss.samples, warmupS: f.warmupMs / 1000 } });

  const delay = (p: 'p50' | 'p99') => {
    const fig = newFigure({ id: `s8-${p}`, scenario: 8, title: `soak event delay ${p}, idle watches in the same seconds`, unit: 'ms', higherIsBetter: false, compare: 'difference' });
    fig.samples.push({ config: DIRECT, round: 0, value: direct.delay[p], extra: { events: direct.events, watches: opened.direct.opened } });
    fig.samples.push({ config: KFP, round: 0, value: proxied.delay[p], extra: { events: proxied.events, watches: opened.proxied.opened, emitted: run.emitted } });
    return fig;
  };

  const fds = newFigure({ id: 's8-fds', scenario: 8, title: `soak open descriptors of the proxy (every process)`, unit: 'descriptors', higherIsBetter: false, compare: 'difference' });
  fds.samples.push({ config: `${KFP}: before the watches`, round: 0, value: f.fds.baseline });
  fds.samples.push({ config: `${KFP}: peak`, round: 0, value: f.meter.peakFds() });
  fds.samples.push({ config: `${KFP}: after`, round: 0, value: f.fds.after, extra: { afterS: f.fds.seconds, allowance: f.fds.allowance, changedFromBefore: f.fds.diff || 'nothing' } });
  ctx.options.log(
    `  errors ${total}; RSS slope ${rss.kibPerMin.toFixed(0)} KiB/min (${rss.pctPerMin.toFixed(3)}%/min); delay p99 ${proxied.delay.p99.toFixed(2)} ms vs direct ${direct.delay.p99.toFixed(2)} ms; ` +
      `descriptors ${f.fds.baseline} → peak ${f.meter.peakFds()} → ${f.fds.after} after ${f.fds.seconds.toFixed(0)} s${f.fds.diff ? ` (${f.fds.diff})` : ''}`,
  );
  return { list: [err, slope, delay('p50'), delay('p99'), fds], meanRssKiB: rss.meanKiB };
}
