/**
 * The benchmark's knobs: what `npm run bench` runs by default (FULL), what the
 * smoke test runs (SMOKE), and what each one means. run.ts maps the command
 * line onto them.
 */

/** Streams per HTTP/2 connection the servers allow: kube-front-proxy's default listen.http2MaxConcurrentStreams, and kube-apiserver's. */
export const HTTP2_MAX_STREAMS = 250;

export interface BenchOptions {
  /** Which scenarios (1–8) to run. */
  readonly scenarios: readonly number[];
  /** Rounds: each runs one window per configuration, in a rotated order. */
  readonly rounds: number;
  readonly windowMs: number;
  readonly warmupMs: number;
  /** Keep-alive connections of scenarios 1–3. */
  readonly connections: number;
  /** Scenario 1 over HTTP/2: the `connections` requests in flight as streams spread over this many sessions. */
  readonly http2Sessions: number;
  /** Distinct tokens per algorithm (scenario 3). */
  readonly tokens: number;
  /** Idle watches wanted (scenario 4); capped by the open-file limit. */
  readonly watches: number;
  readonly watchRounds: number;
  /** Scenario 4 over HTTP/2: watches (streams) per session, so ceil(watches / this) sessions; at most HTTP2_MAX_STREAMS. */
  readonly http2Streams: number;
  /** A fresh proxy and nginx for every scenario-4 window (the smoke run reuses the running ones to start faster). */
  readonly freshWatchServers: boolean;
  readonly watchEventRate: number;
  readonly upgradeRate: number;
  readonly tunnelBytes: number;
  /** Concurrent clients of scenario 6, each with a new connection per request. */
  readonly churnConnections: number;
  /** The soak (scenario 8): how long its steady load runs; the first 20% of it (2 minutes at most) is warm-up. */
  readonly soakMs: number;
  /** How often the soak reads the proxy's RSS and descriptors. */
  readonly soakSampleMs: number;
  /** After the soak, how long its descriptors may take to come back: an idle upstream connection closes only at its keep-alive timeout. */
  readonly soakSettleMs: number;
  readonly soakLoad: SoakLoad;
  /** Before each window, wait up to this long for other work on the machine to drop under 0.3 core. */
  readonly quietMs: number;
  /** listen.workers for kube-front-proxy; unset: its own default (one per core). */
  readonly proxyWorkers?: number;
  /** The upstream stand-in offers h2 (HTTP/1.1 still served by ALPN), so kube-front-proxy's upstream.http2 (its default) can use it; false: HTTP/1.1 only. */
  readonly upstreamHttp2?: boolean;
  /** Run one extra scenario-1 window with the proxy under --cpu-prof. */
  readonly profile: boolean;
  /** Run the soak's proxy under --cpu-prof and say what its long busy stretches were (what the event delay's tail is made of). */
  readonly soakProfile?: boolean;
  /** Where the profile (and the proxy's logs, with keepWorkDir) go. */
  readonly outDir: string;
  readonly keepWorkDir?: boolean;
  readonly log: (line: string) => void;
}

/** The soak's steady mixed load, beside its idle watches (`watches` through the proxy). */
export interface SoakLoad {
  /** GETs of a Pod through the proxy, a second (fixed rate). */
  readonly readsPerSecond: number;
  /** Watches opened through the proxy a second, each closed by the client after `watchLifeMs`. */
  readonly watchesPerSecond: number;
  readonly watchLifeMs: number;
  /** exec (SPDY upgrade) sessions through the proxy a second. */
  readonly execsPerSecond: number;
  /** Idle watches straight to the upstream: the control for event delay, in the same seconds. */
  readonly directWatches: number;
}

/** The full run of issue 5, and the soak of issue 15. */
export const FULL: Omit<BenchOptions, 'outDir' | 'log'> = {
  scenarios: [1, 2, 3, 4, 5, 6, 7, 8],
  rounds: 3,
  windowMs: 3000,
  warmupMs: 1000,
  connections: 64,
  http2Sessions: 4,
  tokens: 10_000,
  watches: 10_000,
  watchRounds: 2,
  http2Streams: HTTP2_MAX_STREAMS,
  freshWatchServers: true,
  watchEventRate: 200,
  upgradeRate: 20,
  tunnelBytes: 256 * 1024 * 1024,
  churnConnections: 64,
  soakMs: 10 * 60_000,
  soakSampleMs: 5000,
  // The upstream stand-in's Keep-Alive: timeout=120 is what undici keeps an idle HTTP/1.1 connection for; HTTP/2 ones close after 30 s.
  soakSettleMs: 150_000,
  soakLoad: { readsPerSecond: 200, watchesPerSecond: 10, watchLifeMs: 5000, execsPerSecond: 1, directWatches: 300 },
  quietMs: 10_000,
  upstreamHttp2: true,
  profile: true,
};

/** Every scenario at tiny sizes, for the smoke test: the full run with these changes. */
export const SMOKE: Omit<BenchOptions, 'outDir' | 'log'> = {
  ...FULL,
  rounds: 1,
  windowMs: 300,
  warmupMs: 100,
  connections: 8,
  http2Sessions: 2,
  tokens: 20,
  watches: 20,
  watchRounds: 1,
  // Several HTTP/2 sessions even at 20 watches, the last one partly filled.
  http2Streams: 8,
  freshWatchServers: false,
  // One process per proxy: the smoke run starts four of them.
  proxyWorkers: 1,
  tunnelBytes: 1024 * 1024,
  churnConnections: 4,
  // A few seconds of the same mix, sampled often enough for a slope.
  soakMs: 3000,
  soakSampleMs: 250,
  soakSettleMs: 2000,
  soakLoad: { ...FULL.soakLoad, watchLifeMs: 1000, directWatches: 5 },
  quietMs: 0,
};
