/**
 * Rounds of windows and what scenarios do with each: configurations take
 * turns in a rotated order, every window waits for the machine to be quiet,
 * and a closed-loop window reads the proxy's CPU over exactly its measured part.
 */
import { cpuMeter, NOISY_CORES, waitForQuiet, type CpuReading } from './cpu-meter.js';
import type { ClosedJob, Target, ThroughputResult } from './loadgen/jobs.js';
import type { Curve, Figure } from './results.js';
import type { ScenarioContext } from './scenario.js';
import type { Server } from './servers/server.js';
import { median, type LatencySummary } from './stats.js';

const rotate = <T>(list: readonly T[], by: number): T[] => list.map((_, i) => list[(i + by) % list.length]);

/** `rounds` rounds of one window per item, each round in an order rotated by one. */
export async function eachWindow<T>(rounds: number, items: readonly T[], window: (item: T, round: number) => Promise<void>): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    for (const item of rotate(items, round)) await window(item, round);
  }
}

/** TLS handshakes the upstream counted, full and resumed (bench/upstream.ts). */
interface Handshakes {
  readonly full: number;
  readonly resumed: number;
}

/**
 * The upstream's TLS handshakes over the load generator's measured window (asked
 * at its start and end marks): how often the proxy under test opened a new
 * upstream connection.
 */
function handshakeMeter({ loadgen, upstream }: Pick<ScenarioContext, 'loadgen' | 'upstream'>) {
  const ask = () => upstream.call<Handshakes>('handshakes').catch((): Handshakes => ({ full: Number.NaN, resumed: Number.NaN }));
  let start = ask();
  let end: Promise<Handshakes> | undefined;
  const off = loadgen.on('mark', (data) => {
    if ((data as { phase: string }).phase === 'start') start = ask();
    else end = ask();
  });
  return {
    off,
    async read(): Promise<Handshakes> {
      const [a, b] = await Promise.all([start, end ?? ask()]);
      return { full: b.full - a.full, resumed: b.resumed - a.resumed };
    },
  };
}

/** One closed-loop window, with CPU and upstream handshakes read over exactly the measured part. */
export async function closedWindow(ctx: ScenarioContext, server: Server, job: Omit<ClosedJob, 'target'>, target: Target = ctx.target(server)) {
  await waitForQuiet(ctx.options.quietMs);
  const cpu = cpuMeter(ctx, server);
  const tls = handshakeMeter(ctx);
  try {
    const result = await ctx.loadgen.call<ThroughputResult>('closed', { ...job, target });
    return { result, ...cpu.read(result.requests), upstreamHandshakes: await tls.read() };
  } finally {
    cpu.off();
    tls.off();
  }
}

/** Reports a window with failed, non-2xx or no answers as a problem. */
export function checkThroughput(ctx: ScenarioContext, what: string, r: ThroughputResult): void {
  if (r.errors || r.non2xx || r.requests === 0) {
    ctx.problem(`${what}: ${r.requests} answered, ${r.errors} errors, ${r.non2xx} not 2xx${r.firstError ? ` (${r.firstError})` : ''}`);
  }
}

/** What a throughput sample keeps besides its value. */
export const throughputExtra = (r: ThroughputResult, cpu: CpuReading) => ({
  p50ms: r.latency.p50,
  p99ms: r.latency.p99,
  errors: r.errors,
  upstreamCpuUs: cpu.upstreamUs,
  loadgenCpuUs: cpu.loadgenUs,
  foreignCores: cpu.foreignCores,
});

/** One row of a closed-loop figure. */
export interface ClosedRun {
  readonly config: string;
  server(): Promise<Server>;
  readonly job: Omit<ClosedJob, 'target'>;
  /** Added to the server's target (scenario 3's tokens). */
  readonly target?: Partial<Target>;
  /** Kept with each sample (scenario 1's HTTP/2 sessions). */
  readonly extra?: Readonly<Record<string, number>>;
}

/** Rounds of closed-loop windows: one requests/s sample per window and run in `figure`. */
export async function closedRounds(ctx: ScenarioContext, figure: Figure, runs: readonly ClosedRun[]): Promise<void> {
  await eachWindow(ctx.options.rounds, runs, async (run, round) => {
    const server = await run.server();
    const w = await closedWindow(ctx, server, run.job, ctx.target(server, run.target));
    checkThroughput(ctx, `s${figure.scenario} ${run.config}`, w.result);
    const perRequest = (n: number) => n / Math.max(1, w.result.requests);
    const handshakes = { upstreamHandshakesPerRequest: perRequest(w.upstreamHandshakes.full), upstreamResumedPerRequest: perRequest(w.upstreamHandshakes.resumed) };
    figure.samples.push({ config: run.config, round, value: w.result.rps, cpuUs: w.proxyUs, extra: { ...throughputExtra(w.result, w), ...handshakes, ...run.extra } });
    ctx.options.log(
      `  round ${round + 1} ${run.config}: ${w.result.rps.toFixed(0)} req/s, proxy ${fmt(w.proxyUs)} µs/req, ` +
        `${w.upstreamHandshakes.full + w.upstreamHandshakes.resumed} upstream TLS handshakes${noisy(w.foreignCores)}`,
    );
  });
}

/** Latency windows by configuration, gathered for the plot. */
export class CurveWindows {
  readonly #windows = new Map<string, LatencySummary[]>();

  add(config: string, latency: LatencySummary): void {
    this.#windows.set(config, [...(this.#windows.get(config) ?? []), latency]);
  }

  /** Per percentile, the median across windows of each configuration's curves. */
  medians(): Curve[] {
    return [...this.#windows.entries()].map(([config, list]) => ({
      config,
      points: list[0].curve.map(([p], i) => [p, median(list.map((l) => l.curve[i][1]))] as const),
    }));
  }
}

/** A log suffix for a window other work on the machine disturbed. */
export const noisy = (cores: number): string => (cores > NOISY_CORES ? ` (disturbed: other work used ${cores.toFixed(2)} cores)` : '');
/** A CPU figure for the log. */
export const fmt = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(0));
