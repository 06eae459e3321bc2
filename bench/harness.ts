/**
 * The benchmark of issue 5: every scenario, measured direct (client → upstream
 * with the front-proxy client certificate), through kube-front-proxy (bearer
 * token) and through nginx, in short windows that alternate between the
 * configurations round after round; medians and ratios come from report.ts.
 *
 * Every server and the load generator are child processes; the harness only
 * starts them, hands out jobs, and reads /proc for CPU and memory.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { parseConfig } from '../src/config/load.js';
import { startDevIssuer, type DevIssuer } from '../src/dev/issuer.js';
import { ensureDevPki, type DevPki } from '../src/dev/pki.js';
import {
  Child,
  EXT,
  IpcChild,
  PROXY_CLI,
  benchScript,
  cpuMs,
  foreignCores,
  machineCpu,
  nodeFlags,
  openFileLimit,
  processTree,
  rssKiB,
  startScript,
  stopTree,
} from './children.js';
import { EXEC_PATH, PORTFORWARD_PATH, POD_PATH, WATCH_PATH } from './fixtures.js';
import type {
  ClosedJob,
  OpenJob,
  OpenResult,
  Target,
  ThroughputResult,
  TunnelResult,
  UpgradeResult,
  WatchCollectResult,
  WatchOpenResult,
} from './loadgen/jobs.js';
import { nginxHttp2, nginxVersion, prepareNginx } from './nginx.js';
import { summarizeProfiles, type ClockWindow, type ProfileSummary } from './profile.js';
import { median, type LatencySummary } from './stats.js';
import { mintTokens, writeTokens } from './tokens.js';

export const DIRECT = 'direct';
export const KFP = 'kube-front-proxy';
export const NGINX = 'nginx';
export const HTTP_PROXY = 'http-proxy';
export const NOAUTH = 'kube-front-proxy no-auth build';
/** The same servers, with clients over HTTP/2 (the rows are named after the HTTP/1.1 ones with this suffix). */
export const H2 = ' (h2)';
export const KFP_H2 = `${KFP}${H2}`;
export const NGINX_H2 = `${NGINX}${H2}`;
/** Streams per HTTP/2 connection the servers allow: kube-front-proxy's default listen.http2MaxConcurrentStreams, and kube-apiserver's. */
export const HTTP2_MAX_STREAMS = 250;

export interface BenchOptions {
  /** Which scenarios (1–6) to run. */
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
  /** Before each window, wait up to this long for other work on the machine to drop under 0.3 core. */
  readonly quietMs: number;
  /** listen.workers for kube-front-proxy; unset: its own default (one per core). */
  readonly proxyWorkers?: number;
  /** Run one extra scenario-1 window with the proxy under --cpu-prof. */
  readonly profile: boolean;
  /** Where the profile (and the proxy's logs, with keepWorkDir) go. */
  readonly outDir: string;
  readonly keepWorkDir?: boolean;
  readonly log: (line: string) => void;
}

/** The full run of issue 5. */
export const FULL: Omit<BenchOptions, 'outDir' | 'log'> = {
  scenarios: [1, 2, 3, 4, 5, 6],
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
  quietMs: 10_000,
  profile: true,
};

/** Every scenario at tiny sizes: for the smoke test. */
export const SMOKE: Omit<BenchOptions, 'outDir' | 'log'> = {
  scenarios: [1, 2, 3, 4, 5, 6],
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
  watchEventRate: 200,
  upgradeRate: 20,
  tunnelBytes: 1024 * 1024,
  churnConnections: 4,
  quietMs: 0,
  profile: true,
};

/** One window's figure for one configuration. */
export interface Measurement {
  readonly config: string;
  readonly round: number;
  readonly value: number;
  /** CPU of the measured proxy process tree per unit of work (see Figure.cpuUnit). */
  readonly cpuUs?: number;
  /** Anything else worth keeping (CPU of the upstream and the load generator, machine busy share, errors). */
  readonly extra?: Readonly<Record<string, number | string>>;
}

export interface Figure {
  readonly id: string;
  readonly scenario: number;
  readonly title: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  /** Compare latencies as differences (ms) and everything else as ratios. */
  readonly compare: 'ratio' | 'difference';
  readonly cpuUnit?: string;
  /** The configuration a third column compares with (the issue's baselines). */
  readonly baseline?: string;
  /** Take direct and nginx from this figure when this one has none of its own. */
  readonly directFrom?: string;
  readonly samples: Measurement[];
}

export interface Curve {
  readonly config: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
}

export interface BenchResults {
  readonly startedAt: string;
  readonly seconds: number;
  readonly options: Omit<BenchOptions, 'log'>;
  readonly machine: { readonly nproc: number; readonly cpuModel: string; readonly memoryGiB: number; readonly kernel: string; readonly openFiles: number };
  readonly versions: { readonly node: string; readonly nginx: string; readonly kubeFrontProxy: string; readonly undici: string; readonly upstream: string };
  readonly figures: Figure[];
  readonly curves: { readonly s2: Curve[]; readonly s4: Curve[] };
  readonly notes: string[];
  readonly profile?: ProfileSummary & { readonly rps: number; readonly cpuUsPerRequest: number };
  readonly errors: string[];
}

/** A server under test: where clients connect, and which processes to measure. */
interface Server {
  readonly name: string;
  readonly url: string;
  /** Worker processes (kube-front-proxy's cluster); 1 when it runs as one process. */
  readonly workers?: number;
  /** The main (primary) process. */
  readonly pid?: number;
  pids(): number[];
  stop(): Promise<void>;
}

const IDENTITY_HEADERS = [
  'X-Remote-User', 'bench@example.com',
  'X-Remote-Uid', 'bench',
  'X-Remote-Group', 'oidc:developers',
  'X-Remote-Group', 'oidc:infrastructure',
];

const rotate = <T>(list: readonly T[], by: number): T[] => list.map((_, i) => list[(i + by) % list.length]!);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runBench(options: BenchOptions): Promise<BenchResults> {
  const started = Date.now();
  const log = options.log;
  const work = mkdtempSync(join(tmpdir(), 'kfp-bench-'));
  const logs = join(work, 'logs');
  mkdirSync(logs, { recursive: true });
  mkdirSync(options.outDir, { recursive: true });
  const figures: Figure[] = [];
  const notes: string[] = [];
  const errors: string[] = [];
  const curves: { s2: Curve[]; s4: Curve[] } = { s2: [], s4: [] };
  const cleanup: (() => Promise<unknown>)[] = [];
  /** Servers being started: a failed run waits for them, so that cleanup stops them all. */
  const starting: Promise<unknown>[] = [];
  let proxyWorkers: number | undefined;
  const stuck = new Set<string>();
  let profile: BenchResults['profile'];

  const figure = (f: Omit<Figure, 'samples'>): Figure => {
    const full = { ...f, samples: [] as Measurement[] };
    figures.push(full);
    return full;
  };

  try {
    log(`work folder ${work}`);
    const pki = await ensureDevPki(join(work, 'pki'));
    const pem = (path: string) => readFileSync(path, 'utf8');
    const issuer = await startDevIssuer({ tls: { cert: pem(pki.servingCert), key: pem(pki.servingKey) } });
    cleanup.push(() => issuer.close());

    const [upstreamStart, loadgenStart] = await Promise.all([
      startScript<{ port: number }>('upstream', 'upstream', [JSON.stringify({ cert: pki.upstreamCert, key: pki.upstreamKey, clientCA: pki.frontProxyCA })], join(logs, 'upstream.log')),
      startScript<undefined>('loadgen', 'loadgen', [], join(logs, 'loadgen.log')),
    ]);
    const upstream = upstreamStart.child;
    const loadgen = loadgenStart.child;
    cleanup.push(() => upstream.stop(), () => loadgen.stop());
    const upstreamURL = `https://127.0.0.1:${upstreamStart.ready.port}`;

    const [benchToken] = await mintTokens(issuer, 'RS256', 1);
    const bearer = ['authorization', `Bearer ${benchToken!}`];
    const env: Env = { work, logs, pki, issuer, upstreamURL, options, cleanup, stuck };

    const direct: Server = { name: DIRECT, url: upstreamURL, pids: () => [], stop: async () => undefined };
    const targetOf = (server: Server, extra: Partial<Target> = {}): Target =>
      server.name === DIRECT
        ? { origin: upstreamURL, caFile: pki.upstreamCA, certFile: pki.frontProxyClientCert, keyFile: pki.frontProxyClientKey, headers: IDENTITY_HEADERS, ...extra }
        : { origin: server.url, caFile: pki.servingCA, headers: bearer, ...extra };

    /** Starts on first use, stops at the end. */
    const lazy = (start: () => Promise<Server>) => {
      let server: Promise<Server> | undefined;
      return () => {
        if (!server) {
          server = start().then((s) => (cleanup.push(() => s.stop()), s));
          starting.push(server);
        }
        return server;
      };
    };
    const kfp = lazy(() => startProxy(env, KFP, {}));
    const kfpNoCache = lazy(() => startProxy(env, `${KFP} cache off`, { cacheOff: true }));
    const kfpNoAuth = lazy(() => startProxy(env, NOAUTH, { noAuth: true }));
    const nginx = lazy(() => startNginx(env));
    const forwarder = lazy(() => startHttpProxy(env));
    const profileDir = join(options.outDir, 'profile');
    const profiled = lazy(() => {
      rmSync(profileDir, { recursive: true, force: true });
      mkdirSync(profileDir, { recursive: true });
      return startProxy(env, `${KFP} --cpu-prof`, { profileDir });
    });
    // Start what the chosen scenarios need all at once: each takes a second or more to load.
    const has = (...n: number[]) => n.some((x) => options.scenarios.includes(x));
    await Promise.all([
      (has(1, 2, 3, 5, 6) || (has(4) && !options.freshWatchServers)) && kfp(),
      (has(1, 2, 5, 6) || (has(4) && !options.freshWatchServers)) && nginx(),
      has(1) && forwarder(),
      has(1, 3) && kfpNoAuth(),
      has(3) && kfpNoCache(),
    ]);
    const withNginxH2 = nginxHttp2();
    if (has(1, 4)) {
      notes.push(
        withNginxH2
          ? `The "(h2)" rows are the same servers with clients over HTTP/2 (ALPN h2; nginx with \`http2_max_concurrent_streams ${HTTP2_MAX_STREAMS}\`, the proxy's default limit). ` +
              'direct stays HTTP/1.1 (the upstream stand-in, like the proxies\' upstream side, speaks HTTP/1.1 only), so their "vs direct" compares with HTTP/1.1 direct, and their "vs nginx" with nginx (h2).'
          : `The "(h2)" rows are kube-front-proxy with clients over HTTP/2 (ALPN h2); this nginx (${nginxVersion() ?? 'not installed'}, Debian's nginx-light) lacks http_v2_module (\`nginx -V\`), so there is no nginx (h2) row. ` +
              'direct stays HTTP/1.1 (the upstream stand-in, like the proxies\' upstream side, speaks HTTP/1.1 only), so "vs direct" compares with HTTP/1.1 direct.',
      );
    }
    if (has(1, 2, 3, 5, 6)) {
      proxyWorkers = (await kfp()).workers;
      notes.push(`kube-front-proxy ran with ${proxyWorkers} worker process(es)${options.proxyWorkers === undefined ? ' (its default)' : ' (listen.workers)'}; its CPU is summed over all its processes.`);
    }

    /** Waits (up to options.quietMs) until other work on the machine is under NOISY_CORES. */
    const quiet = async () => {
      const deadline = Date.now() + options.quietMs;
      while (Date.now() < deadline && (await foreignCores(500)) > NOISY_CORES) {
        // another session is busy on this machine: let it finish
      }
    };
    /** One closed-loop window, with CPU read over exactly the measured part. */
    const closedWindow = async (server: Server, job: Omit<ClosedJob, 'target'>, target: Target = targetOf(server)) => {
      await quiet();
      const cpu = cpuMeter(loadgen, server, upstream);
      try {
        const result = await loadgen.call<ThroughputResult>('closed', { ...job, target });
        return { result, ...cpu.read(result.requests) };
      } finally {
        cpu.off();
      }
    };
    const check = (what: string, r: ThroughputResult) => {
      if (r.errors || r.non2xx || r.requests === 0) {
        errors.push(`${what}: ${r.requests} answered, ${r.errors} errors, ${r.non2xx} not 2xx${r.firstError ? ` (${r.firstError})` : ''}`);
      }
    };
    const extraOf = (r: ThroughputResult, cpu: CpuReading) => ({
      p50ms: r.latency.p50,
      p99ms: r.latency.p99,
      errors: r.errors,
      upstreamCpuUs: cpu.upstreamUs,
      loadgenCpuUs: cpu.loadgenUs,
      foreignCores: cpu.foreignCores,
    });

    // ---- scenario 1 -------------------------------------------------------
    let kfpMax = Number.NaN;
    if (options.scenarios.includes(1)) {
      log('scenario 1: max requests/s, bearer GET, keep-alive, warm JWT cache');
      const f = figure({
        id: 's1', scenario: 1, title: `max requests/s, ${options.connections} keep-alive connections, warm JWT cache`, unit: 'req/s',
        higherIsBetter: true, compare: 'ratio', cpuUnit: 'µs/req', baseline: HTTP_PROXY,
      });
      const h2 = { http2Sessions: options.http2Sessions };
      notes.push(
        `Scenario 1 (h2): the same ${options.connections} requests in flight, as streams spread round-robin over ${options.http2Sessions} HTTP/2 connections (bench/README.md says why this shape).`,
      );
      const configs: { name: string; server: Server; job?: typeof h2 }[] = [
        { name: DIRECT, server: direct },
        { name: KFP, server: await kfp() },
        { name: KFP_H2, server: await kfp(), job: h2 },
        { name: NGINX, server: await nginx() },
        ...(withNginxH2 ? [{ name: NGINX_H2, server: await nginx(), job: h2 }] : []),
        { name: HTTP_PROXY, server: await forwarder() },
        { name: NOAUTH, server: await kfpNoAuth() },
      ];
      for (let round = 0; round < options.rounds; round++) {
        for (const { name, server, job } of rotate(configs, round)) {
          const w = await closedWindow(server, { path: POD_PATH, connections: options.connections, warmupMs: options.warmupMs, durationMs: options.windowMs, ...job });
          check(`s1 ${name}`, w.result);
          f.samples.push({ config: name, round, value: w.result.rps, cpuUs: w.proxyUs, extra: { ...extraOf(w.result, w), ...job } });
          log(`  round ${round + 1} ${name}: ${w.result.rps.toFixed(0)} req/s, proxy ${fmt(w.proxyUs)} µs/req${noisy(w.foreignCores)}`);
        }
      }
      kfpMax = median(f.samples.filter((s) => s.config === KFP).map((s) => s.value));
    }

    // ---- profile ----------------------------------------------------------
    if (options.profile) {
      log('profile: one scenario-1 window with the proxy under --cpu-prof');
      const server = await profiled();
      const w = await closedWindow(server, { path: POD_PATH, connections: options.connections, warmupMs: options.warmupMs, durationMs: options.windowMs });
      check('profile window', w.result);
      await server.stop();
      // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: keep main threads only (not loader-hook threads), and
      // when a cluster wrote several processes' profiles, leave out the primary's: it only supervises.
      const mains = readdirSync(profileDir)
        .map((f) => ({ f, m: /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(f) }))
        .filter((x) => x.m && x.m[2] === '0')
        .map((x) => ({ file: x.f, pid: Number(x.m![1]) }));
      const files = (new Set(mains.map((x) => x.pid)).size > 1 ? mains.filter((x) => x.pid !== server.pid) : mains).map((x) => x.file);
      if (files.length) {
        profile = { ...summarizeProfiles(files.map((f) => join(profileDir, f)), 20, w.clock), rps: w.result.rps, cpuUsPerRequest: w.proxyUs ?? Number.NaN };
      } else errors.push('profile: the proxy wrote no .cpuprofile (did it exit cleanly on SIGTERM?)');
    }

    // ---- scenario 2 -------------------------------------------------------
    if (options.scenarios.includes(2)) {
      if (Number.isNaN(kfpMax)) {
        const w = await closedWindow(await kfp(), { path: POD_PATH, connections: options.connections, warmupMs: options.warmupMs, durationMs: options.windowMs });
        kfpMax = w.result.rps;
      }
      const rate = Math.max(10, Math.floor(kfpMax / 2));
      log(`scenario 2: latency at a fixed ${rate} req/s (half the proxy's max)`);
      notes.push(`Scenario 2 ran at ${rate} req/s, half of kube-front-proxy's scenario-1 median (${kfpMax.toFixed(0)} req/s), on ${options.connections} connections.`);
      const p50 = figure({ id: 's2-p50', scenario: 2, title: `p50 latency at ${rate} req/s`, unit: 'ms', higherIsBetter: false, compare: 'difference', cpuUnit: 'µs/req' });
      const p99 = figure({ id: 's2-p99', scenario: 2, title: `p99 latency at ${rate} req/s`, unit: 'ms', higherIsBetter: false, compare: 'difference', cpuUnit: 'µs/req' });
      const configs = [direct, await kfp(), await nginx()];
      const curveWindows = new Map<string, LatencySummary[]>();
      for (let round = 0; round < options.rounds; round++) {
        for (const server of rotate(configs, round)) {
          await quiet();
          const cpu = cpuMeter(loadgen, server, upstream);
          const job: OpenJob = { target: targetOf(server), path: POD_PATH, connections: options.connections, rate, warmupMs: options.warmupMs, durationMs: options.windowMs };
          const r = await loadgen.call<OpenResult>('open', job).finally(() => cpu.off());
          const c = cpu.read(r.requests);
          check(`s2 ${server.name}`, r);
          const extra = { ...extraOf(r, c), achievedRate: r.rps, lagP99ms: r.lagP99, lagMaxMs: r.lagMax };
          p50.samples.push({ config: server.name, round, value: r.latency.p50, cpuUs: c.proxyUs, extra });
          p99.samples.push({ config: server.name, round, value: r.latency.p99, cpuUs: c.proxyUs, extra });
          curveWindows.set(server.name, [...(curveWindows.get(server.name) ?? []), r.latency]);
          log(`  round ${round + 1} ${server.name}: p50 ${r.latency.p50.toFixed(3)} ms, p99 ${r.latency.p99.toFixed(3)} ms (schedule lag p99 ${r.lagP99.toFixed(2)} ms)${noisy(c.foreignCores)}`);
        }
      }
      curves.s2.push(...medianCurves(curveWindows));
    }

    // ---- scenario 3 -------------------------------------------------------
    if (options.scenarios.includes(3)) {
      log(`scenario 3: authentication cost, ${options.tokens} distinct RS256 and ES256 tokens, cache warm and cold`);
      const files: Record<'RS256' | 'ES256', string> = {
        RS256: writeTokens(join(work, 'tokens-rs256.json'), await mintTokens(issuer, 'RS256', options.tokens)),
        ES256: writeTokens(join(work, 'tokens-es256.json'), await mintTokens(issuer, 'ES256', options.tokens)),
      };
      const f = figure({
        id: 's3', scenario: 3, title: `requests/s with ${options.tokens} distinct tokens per algorithm, ${options.connections} connections`, unit: 'req/s',
        higherIsBetter: true, compare: 'ratio', cpuUnit: 'µs/req', baseline: NOAUTH, directFrom: 's1',
      });
      const runs: { config: string; server: () => Promise<Server>; alg: 'RS256' | 'ES256'; warm: boolean }[] = [
        { config: NOAUTH, server: kfpNoAuth, alg: 'RS256', warm: false },
        { config: `${KFP} RS256 cache warm`, server: kfp, alg: 'RS256', warm: true },
        { config: `${KFP} RS256 cache cold`, server: kfpNoCache, alg: 'RS256', warm: false },
        { config: `${KFP} ES256 cache warm`, server: kfp, alg: 'ES256', warm: true },
        { config: `${KFP} ES256 cache cold`, server: kfpNoCache, alg: 'ES256', warm: false },
      ];
      notes.push(
        'Scenario 3: "cache cold" is the same proxy with authentication.tokenCacheMaxEntries: 0, so every request verifies its token; ' +
          '"cache warm" first sends one request per token, then cycles through them inside the 10 s cache TTL. ' +
          'The no-auth build is the same proxy entry point with src/authn/request-authenticator swapped at load time for a constant identity (bench/noauth-register.ts).',
      );
      for (let round = 0; round < options.rounds; round++) {
        for (const run of rotate(runs, round)) {
          const server = await run.server();
          const target = targetOf(server, { tokensFile: files[run.alg] });
          const w = await closedWindow(
            server,
            { path: POD_PATH, connections: options.connections, warmupMs: options.warmupMs, durationMs: options.windowMs, ...(run.warm && { warmupRequests: options.tokens }) },
            target,
          );
          check(`s3 ${run.config}`, w.result);
          f.samples.push({ config: run.config, round, value: w.result.rps, cpuUs: w.proxyUs, extra: extraOf(w.result, w) });
          log(`  round ${round + 1} ${run.config}: ${w.result.rps.toFixed(0)} req/s, ${fmt(w.proxyUs)} µs/req${noisy(w.foreignCores)}`);
        }
      }
    }

    // ---- scenario 4 -------------------------------------------------------
    if (options.scenarios.includes(4)) {
      const limit = openFileLimit();
      // The proxy holds two descriptors per watch (client and upstream); keep 200 for everything else.
      const feasible = Math.floor((limit.hard - 200) / 2);
      const count = Math.min(options.watches, feasible);
      if (count < options.watches) {
        notes.push(
          `Scenario 4 used ${count} watches, not ${options.watches}: the hard open-file limit here is ${limit.hard} and cannot be raised without privileges, ` +
            'and the proxy (like nginx) holds two descriptors per watch, one to the client and one to the upstream.',
        );
      }
      log(`scenario 4: ${count} idle watches, then ${options.watchEventRate} events/s across them`);
      const rss = figure({ id: 's4-rss', scenario: 4, title: `RSS growth per idle watch (${count} watches)`, unit: 'KiB', higherIsBetter: false, compare: 'ratio' });
      const d50 = figure({ id: 's4-p50', scenario: 4, title: `event delivery delay p50, ${options.watchEventRate} events/s across ${count} watches`, unit: 'ms', higherIsBetter: false, compare: 'difference' });
      const d99 = figure({ id: 's4-p99', scenario: 4, title: `event delivery delay p99, ${options.watchEventRate} events/s across ${count} watches`, unit: 'ms', higherIsBetter: false, compare: 'difference' });
      const curveWindows = new Map<string, LatencySummary[]>();
      if (options.http2Streams > HTTP2_MAX_STREAMS) throw new Error(`http2Streams ${options.http2Streams}: the servers allow ${HTTP2_MAX_STREAMS} streams per HTTP/2 connection`);
      const sessions = Math.ceil(count / options.http2Streams);
      notes.push(
        `Scenario 4 (h2): the same ${count} watches as streams of ${sessions} HTTP/2 connection(s), ${Math.min(count, options.http2Streams)} per connection, as client-go's informers share one; ` +
          'upstream, each watch is still a connection of its own (HTTP/1.1).',
      );
      // A fresh proxy and nginx per window (memory freed by an earlier window would hide growth), all started up front.
      const configs: { name: string; start?: (round: number) => Promise<Server>; h2?: boolean; headWithFirstEvent?: boolean }[] = [
        { name: DIRECT },
        { name: KFP, start: (round) => (options.freshWatchServers ? startProxy(env, `${KFP} watches ${round + 1}`, {}) : kfp()) },
        { name: KFP_H2, h2: true, start: (round) => (options.freshWatchServers ? startProxy(env, `${KFP_H2} watches ${round + 1}`, {}) : kfp()) },
        { name: NGINX, start: (round) => (options.freshWatchServers ? startNginx(env, `nginx-watches-${round + 1}`) : nginx()) },
        ...(withNginxH2
          ? [{ name: NGINX_H2, h2: true, headWithFirstEvent: true, start: (round: number) => (options.freshWatchServers ? startNginx(env, `nginx-h2-watches-${round + 1}`) : nginx()) }]
          : []),
      ];
      if (withNginxH2) {
        notes.push(
          `Scenario 4, nginx (h2): ${nginxVersion() ?? 'nginx'} over HTTP/2 holds a streamed response's head back until its first body bytes (over HTTP/1.1 it sends it at once; curl --http2 sees the same), ` +
            'so a watch with no event yet never gets its response head, and a client-go Watch() through it would block until the first event or bookmark. ' +
            'The load generator counts those watches open once their requests are sent and the upstream holds every one; the delay of each event is measured as for the others.',
        );
      }
      const fresh = new Map<string, Promise<Server>>();
      for (let round = 0; round < options.watchRounds; round++) {
        for (const config of configs) if (config.start) fresh.set(`${config.name} ${round}`, config.start(round));
      }
      starting.push(...fresh.values());
      for (const started of options.freshWatchServers ? fresh.values() : []) {
        void started.then((s) => cleanup.push(() => s.stop()), () => undefined);
      }
      await Promise.all(fresh.values());
      for (let round = 0; round < options.watchRounds; round++) {
        for (const config of rotate(configs, round)) {
          const server = config.name === DIRECT ? direct : await fresh.get(`${config.name} ${round}`)!;
          try {
            // Load the code paths first, so the baseline is a proxy that has served requests.
            await closedWindow(server, { path: POD_PATH, connections: 4, warmupMs: 0, durationMs: 200, ...(config.h2 && { http2Sessions: 4 }) });
            await sleep(500);
            const before = rssKiB(server.pids());
            const opened = await loadgen.call<WatchOpenResult>('watchOpen', {
              target: targetOf(server),
              path: WATCH_PATH,
              count,
              concurrency: 64,
              ...(config.h2 && { http2Streams: options.http2Streams }),
              ...(config.headWithFirstEvent && { headWithFirstEvent: true }),
            });
            if (opened.failed) errors.push(`s4 ${config.name}: ${opened.failed} of ${count} watches failed (${opened.firstError ?? '?'})`);
            await until(async () => (await upstream.call<number>('watchCount')) >= opened.opened, 30_000, 'the upstream to see every watch');
            await sleep(Math.min(2000, options.windowMs));
            const after = rssKiB(server.pids());
            if (server.name !== DIRECT) {
              rss.samples.push({
                config: config.name,
                round,
                value: (after - before) / Math.max(1, opened.opened),
                extra: { rssBeforeKiB: before, rssAfterKiB: after, watches: opened.opened, openSeconds: opened.seconds, ...(config.h2 && { http2Sessions: sessions }) },
              });
            }
            await quiet();
            await loadgen.call('watchCollect');
            const meter = cpuMeter(loadgen, server, upstream);
            const cpu0 = cpuMs(server.pids());
            const emitted = await upstream.call<number>('emit', { rate: options.watchEventRate, durationMs: options.windowMs });
            await sleep(500);
            const cpu1 = cpuMs(server.pids());
            const { foreignCores: foreign } = meter.read(1);
            meter.off();
            const got = await loadgen.call<WatchCollectResult>('watchCollect');
            if (got.events !== emitted) errors.push(`s4 ${config.name}: ${emitted} events sent, ${got.events} delivered`);
            const extra = { events: got.events, emitted, proxyCpuUsPerEvent: ((cpu1 - cpu0) * 1000) / Math.max(1, emitted), foreignCores: foreign };
            d50.samples.push({ config: config.name, round, value: got.delay.p50, extra });
            d99.samples.push({ config: config.name, round, value: got.delay.p99, extra });
            curveWindows.set(config.name, [...(curveWindows.get(config.name) ?? []), got.delay]);
            log(
              `  round ${round + 1} ${config.name}: ${opened.opened} watches in ${opened.seconds.toFixed(1)} s` +
                `${server.name === DIRECT ? '' : `, RSS +${((after - before) / Math.max(1, opened.opened)).toFixed(1)} KiB/watch`}` +
                `, delay p50 ${got.delay.p50.toFixed(2)} ms p99 ${got.delay.p99.toFixed(2)} ms (${got.events}/${emitted} events)${noisy(foreign)}`,
            );
          } finally {
            await loadgen.call('watchClose');
            if (server.name !== DIRECT && options.freshWatchServers) await server.stop();
            await until(async () => (await upstream.call<number>('watchCount')) === 0, 30_000, 'watches to close at the upstream').catch(async (err: Error) => {
              errors.push(`s4 ${config.name}: ${err.message}`);
              await upstream.call('endWatches');
            });
          }
        }
      }
      curves.s4.push(...medianCurves(curveWindows));
    }

    // ---- scenario 5 -------------------------------------------------------
    if (options.scenarios.includes(5)) {
      log(`scenario 5: upgrade setup at ${options.upgradeRate} sessions/s, and ${options.tunnelBytes} bytes through one tunnel`);
      const s50 = figure({ id: 's5-setup-p50', scenario: 5, title: `exec upgrade setup p50 (new TLS connection → 101) at ${options.upgradeRate}/s`, unit: 'ms', higherIsBetter: false, compare: 'difference', cpuUnit: 'µs/session' });
      const s99 = figure({ id: 's5-setup-p99', scenario: 5, title: `exec upgrade setup p99 (new TLS connection → 101) at ${options.upgradeRate}/s`, unit: 'ms', higherIsBetter: false, compare: 'difference', cpuUnit: 'µs/session' });
      const bw = figure({ id: 's5-tunnel', scenario: 5, title: `port-forward tunnel, ${(options.tunnelBytes / 2 ** 20).toFixed(0)} MiB upstream → client`, unit: 'MiB/s', higherIsBetter: true, compare: 'ratio', cpuUnit: 'µs/MiB' });
      const configs = [direct, await kfp(), await nginx()];
      for (let round = 0; round < options.rounds; round++) {
        for (const server of rotate(configs, round)) {
          await quiet();
          const meter = cpuMeter(loadgen, server, upstream);
          let cpu0 = cpuMs(server.pids());
          const up = await loadgen.call<UpgradeResult>('upgrades', { target: targetOf(server), path: EXEC_PATH, rate: options.upgradeRate, durationMs: options.windowMs });
          const sessionUs = ((cpuMs(server.pids()) - cpu0) * 1000) / Math.max(1, up.sessions);
          if (up.failed || up.sessions === 0) errors.push(`s5 ${server.name}: ${up.failed} upgrades failed (${up.firstError ?? '?'})`);
          const own = server.name === DIRECT ? undefined : sessionUs;
          const { foreignCores: foreign } = meter.read(1);
          meter.off();
          const upExtra = { sessions: up.sessions, failed: up.failed, foreignCores: foreign };
          s50.samples.push({ config: server.name, round, value: up.latency.p50, cpuUs: own, extra: upExtra });
          s99.samples.push({ config: server.name, round, value: up.latency.p99, cpuUs: own, extra: upExtra });
          cpu0 = cpuMs(server.pids());
          const t = await loadgen.call<TunnelResult>('tunnel', { target: targetOf(server), path: PORTFORWARD_PATH, bytes: options.tunnelBytes });
          const mib = t.bytes / 2 ** 20;
          const tunnelUs = server.name === DIRECT ? undefined : ((cpuMs(server.pids()) - cpu0) * 1000) / mib;
          bw.samples.push({ config: server.name, round, value: mib / t.seconds, cpuUs: tunnelUs, extra: { seconds: t.seconds, setupMs: t.setupMs } });
          log(`  round ${round + 1} ${server.name}: setup p50 ${up.latency.p50.toFixed(2)} ms p99 ${up.latency.p99.toFixed(2)} ms; tunnel ${(mib / t.seconds).toFixed(0)} MiB/s${noisy(foreign)}`);
        }
      }
    }

    // ---- scenario 6 -------------------------------------------------------
    if (options.scenarios.includes(6)) {
      log(`scenario 6: connection churn, a new TLS connection per request, ${options.churnConnections} clients`);
      const f = figure({
        id: 's6', scenario: 6, title: `requests/s with a new TLS connection per request (no session resumption), ${options.churnConnections} clients`, unit: 'req/s',
        higherIsBetter: true, compare: 'ratio', cpuUnit: 'µs/req',
      });
      const configs = [direct, await kfp(), await nginx()];
      for (let round = 0; round < options.rounds; round++) {
        for (const server of rotate(configs, round)) {
          const w = await closedWindow(server, {
            path: POD_PATH, connections: options.churnConnections, warmupMs: options.warmupMs, durationMs: options.windowMs, newConnectionPerRequest: true,
          });
          check(`s6 ${server.name}`, w.result);
          f.samples.push({ config: server.name, round, value: w.result.rps, cpuUs: w.proxyUs, extra: extraOf(w.result, w) });
          log(`  round ${round + 1} ${server.name}: ${w.result.rps.toFixed(0)} req/s, ${fmt(w.proxyUs)} µs/req${noisy(w.foreignCores)}`);
        }
      }
    }
  } finally {
    await Promise.allSettled(starting);
    // All at once: a proxy that needs its SIGKILL grace period must not hold up the others.
    await Promise.all(cleanup.map((fn) => fn().catch((err: unknown) => errors.push(`cleanup: ${String(err)}`))));
    if (!options.keepWorkDir) rmSync(work, { recursive: true, force: true });
  }
  if (stuck.size) {
    notes.push(
      `${[...stuck].join(', ')}: did not exit within 5 s of SIGTERM with nothing in flight, and had to be killed (SIGKILL); ` +
        'a cluster worker whose proxy has closed stays alive while its IPC channel to the primary is open, and the primary waits for it.',
    );
  }

  const { log: _log, ...rest } = options;
  return {
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    options: rest,
    machine: machine(),
    versions: versions(),
    figures,
    curves,
    notes,
    ...(profile && { profile }),
    errors,
  };
}

const noisy = (cores: number) => (cores > NOISY_CORES ? ` (disturbed: other work used ${cores.toFixed(2)} cores)` : '');
const fmt = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(0));

/** Per percentile, the median across windows of one configuration's latency curves. */
function medianCurves(windows: Map<string, LatencySummary[]>): Curve[] {
  return [...windows.entries()].map(([config, list]) => ({
    config,
    points: list[0]!.curve.map(([p], i) => [p, median(list.map((l) => l.curve[i]![1]))] as const),
  }));
}

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

// ---- CPU over a window ----------------------------------------------------

interface CpuReading {
  /** CPU µs of the measured proxy per request; undefined for direct. */
  readonly proxyUs: number | undefined;
  readonly upstreamUs: number;
  readonly loadgenUs: number;
  /** Cores used by work that is not ours (other sessions on a shared machine) during the window. */
  readonly foreignCores: number;
  /** The measured window on the monotonic clock. */
  readonly clock: ClockWindow;
}

/** Above this many foreign cores a window is marked as disturbed. */
export const NOISY_CORES = 0.3;

/** Reads CPU time at the load generator's start and end marks (or now, when no mark came). */
function cpuMeter(loadgen: IpcChild, server: Server, upstream: Child) {
  const take = () => ({
    proxy: cpuMs(server.pids()),
    upstream: cpuMs([upstream.pid]),
    loadgen: cpuMs([loadgen.pid]),
    ours: cpuMs(processTree(process.pid)),
    machine: machineCpu().taskMs,
    at: performance.now(),
    clockUs: Number(process.hrtime.bigint() / 1000n),
  });
  let start = take();
  let end: ReturnType<typeof take> | undefined;
  const off = loadgen.on('mark', (data) => {
    if ((data as { phase: string }).phase === 'start') start = take();
    else end = take();
  });
  return {
    off,
    read(requests: number): CpuReading {
      const e = end ?? take();
      const per = (a: number, b: number) => ((b - a) * 1000) / Math.max(1, requests);
      return {
        proxyUs: server.name === DIRECT ? undefined : per(start.proxy, e.proxy),
        upstreamUs: per(start.upstream, e.upstream),
        loadgenUs: per(start.loadgen, e.loadgen),
        foreignCores: Math.max(0, (e.machine - start.machine - (e.ours - start.ours)) / Math.max(1, e.at - start.at)),
        clock: { fromUs: start.clockUs, toUs: e.clockUs },
      };
    },
  };
}

// ---- the servers under test -----------------------------------------------

interface Env {
  readonly work: string;
  readonly logs: string;
  readonly pki: DevPki;
  readonly issuer: DevIssuer;
  readonly upstreamURL: string;
  readonly options: BenchOptions;
  readonly cleanup: (() => Promise<unknown>)[];
  /** Proxies that had to be killed: they did not exit within 5 s of SIGTERM. */
  readonly stuck: Set<string>;
}

const slug = (name: string) => name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');

/** Starts kube-front-proxy from its real entry point with a bench configuration; resolves when /readyz says ready. */
async function startProxy(env: Env, name: string, opts: { cacheOff?: boolean; noAuth?: boolean; profileDir?: string }): Promise<Server> {
  const { pki } = env;
  const file = join(env.work, `${slug(name)}.yaml`);
  const config = {
    listen: {
      address: '127.0.0.1:0',
      healthAddress: '127.0.0.1:0',
      tls: { certFile: pki.servingCert, keyFile: pki.servingKey },
      ...(env.options.proxyWorkers !== undefined && { workers: env.options.proxyWorkers }),
    },
    upstream: { url: env.upstreamURL, caFile: pki.upstreamCA, clientCertFile: pki.frontProxyClientCert, clientKeyFile: pki.frontProxyClientKey },
    authentication: {
      jwt: [
        {
          issuer: { url: env.issuer.url, audiences: ['kubernetes'], certificateAuthorityFile: pki.servingCA },
          claimMappings: { username: { claim: 'email', prefix: '' }, groups: { claim: 'groups', prefix: 'oidc:' }, uid: { claim: 'sub' } },
        },
      ],
      ...(opts.cacheOff && { tokenCacheMaxEntries: 0 }),
    },
    // The audit line is part of every request's cost, as in production.
    audit: { path: join(env.work, `${slug(name)}-audit.log`), format: 'combined' },
  };
  if (env.options.proxyWorkers !== undefined && !acceptsConfig(config, env.work)) {
    // A proxy built before listen.workers existed runs as one process anyway.
    delete (config.listen as { workers?: number }).workers;
  }
  writeFileSync(file, JSON.stringify(config, null, 2));
  const args = [
    ...nodeFlags(),
    ...(opts.noAuth ? ['--import', benchScript('noauth-register')] : []),
    ...(opts.profileDir ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir, '--cpu-prof-interval', '500'] : []),
    PROXY_CLI,
    '--config',
    file,
    '--log-level',
    'info',
  ];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const child = new Child(name, proc, join(env.logs, `${slug(name)}.log`));
  const stop = async () => {
    if (!child.alive) return;
    const t0 = Date.now();
    // The profiler writes its file on the way out: give that process longer.
    await stopTree(child, 'SIGTERM', opts.profileDir ? 20_000 : 5_000);
    env.options.log(`  stopped ${name} in ${Date.now() - t0} ms${child.killed ? ' (killed)' : ''}`);
    if (child.killed) env.stuck.add(name.replace(/ (watches )?\d+$/, ''));
  };
  try {
    // One process logs "listening" with both URLs; a cluster's primary logs the health URL and each worker its url.
    const { url, healthURL, workers } = await new Promise<{ url: string; healthURL: string; workers: number }>((resolve, reject) => {
      let buffered = '';
      let url = '';
      let healthURL = '';
      let workers = 1;
      const timer = setTimeout(() => reject(new Error(`${name}: no "listening" log line within 60 s:\n${child.tail()}`)), 60_000);
      proc.stderr!.on('data', (data: Buffer) => {
        buffered += data.toString('utf8');
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          try {
            const entry = JSON.parse(line) as { msg?: string; url?: string; healthURL?: string; workers?: number };
            if (typeof entry.workers === 'number') workers = entry.workers;
            if (entry.healthURL) healthURL = entry.healthURL;
            if (entry.url && /listening/.test(entry.msg ?? '')) url = entry.url;
          } catch {
            // not a log line
          }
          if (url && healthURL) {
            clearTimeout(timer);
            resolve({ url, healthURL, workers });
          }
        }
      });
      void child.exited().then((code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}) before listening:\n${child.tail()}`));
      });
    });
    await until(
      async () => (await fetch(`${healthURL}/readyz`).then((r) => r.status, () => 0)) === 200,
      30_000,
      `${name} /readyz`,
    );
    const server: Server = { name, url, pids: () => (child.alive ? processTree(child.pid) : []), stop, workers, pid: child.pid };
    // The no-auth build must let a request without a token through, and the real one must not.
    const status = await probe(url, pki.servingCA);
    if (opts.noAuth ? status !== 200 : status !== 401) {
      throw new Error(`${name}: a request without a token got ${status}; expected ${opts.noAuth ? '200 (was the authenticator swapped?)' : '401'}`);
    }
    return server;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Whether this tree's configuration schema accepts `config` (shape only, files not checked). */
function acceptsConfig(config: unknown, dir: string): boolean {
  try {
    parseConfig(config, dir, { checkFiles: false });
    return true;
  } catch {
    return false;
  }
}

async function probe(url: string, caFile: string): Promise<number> {
  const agent = new Agent({ connect: { ca: readFileSync(caFile) } });
  try {
    const res = await request(`${url}${POD_PATH}`, { dispatcher: agent });
    await res.body.dump();
    return res.statusCode;
  } finally {
    await agent.close();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function startNginx(env: Env, name = 'nginx'): Promise<Server> {
  if (!nginxVersion()) throw new Error('nginx is not installed: apt-get install -y nginx-light');
  const { pki } = env;
  const port = await freePort();
  const prefix = join(env.work, slug(name));
  const { command, args } = prepareNginx({
    prefix,
    port,
    upstreamPort: Number(new URL(env.upstreamURL).port),
    servingCert: pki.servingCert,
    servingKey: pki.servingKey,
    upstreamCA: pki.upstreamCA,
    clientCert: pki.frontProxyClientCert,
    clientKey: pki.frontProxyClientKey,
    identityHeaders: IDENTITY_HEADERS,
    maxFiles: openFileLimit().hard,
    ...(nginxHttp2() && { http2MaxStreams: HTTP2_MAX_STREAMS }),
  });
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const child = new Child(NGINX, proc, join(env.logs, `${slug(name)}.log`));
  const stop = () => stopTree(child, 'SIGTERM', 10_000);
  try {
    await until(async () => {
      if (!child.alive) throw new Error(`nginx exited:\n${child.tail()}\n${readFileSync(join(prefix, 'error.log'), 'utf8')}`);
      return canConnect(port);
    }, 15_000, 'nginx to listen');
    const url = `https://127.0.0.1:${port}`;
    const status = await probe(url, pki.servingCA);
    if (status !== 200) throw new Error(`nginx answered ${status} to a GET; see ${join(prefix, 'error.log')}`);
    return { name: NGINX, url, pids: () => (child.alive ? processTree(child.pid) : []), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startHttpProxy(env: Env): Promise<Server> {
  const { pki } = env;
  const { child, ready } = await startScript<{ url: string }>(
    HTTP_PROXY,
    'http-proxy-forwarder',
    [
      JSON.stringify({
        servingCert: pki.servingCert,
        servingKey: pki.servingKey,
        upstreamURL: env.upstreamURL,
        upstreamCA: pki.upstreamCA,
        clientCert: pki.frontProxyClientCert,
        clientKey: pki.frontProxyClientKey,
        identityHeaders: IDENTITY_HEADERS,
      }),
    ],
    join(env.logs, 'http-proxy.log'),
  );
  return { name: HTTP_PROXY, url: ready.url, pids: () => (child.alive ? processTree(child.pid) : []), stop: () => child.stop() };
}

// ---- the machine and versions -----------------------------------------------

function machine(): BenchResults['machine'] {
  const model = cpus()[0]?.model ?? 'unknown';
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return { nproc: cpus().length, cpuModel: model, memoryGiB: Math.round(totalmem() / 2 ** 30), kernel, openFiles: openFileLimit().hard };
}

function versions(): BenchResults['versions'] {
  const root = fileURLToPath(new URL(EXT === '.ts' ? '../' : '../../../../', import.meta.url));
  let rev = 'unknown';
  try {
    rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'package.json'], { cwd: root, encoding: 'utf8' }).trim();
    if (dirty) rev += ' (with uncommitted changes in src/ or package.json)';
  } catch {
    // not a git checkout
  }
  let undici = 'unknown';
  try {
    undici = (JSON.parse(readFileSync(join(root, 'node_modules/undici/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // not installed where expected
  }
  return {
    node: process.version,
    nginx: nginxVersion() ?? 'not installed',
    kubeFrontProxy: rev,
    undici,
    upstream: 'bench/upstream.ts (lean Node HTTPS server, mutual TLS, precomputed bodies)',
  };
}
