/**
 * The benchmark of issue 5: every scenario, measured direct (client → upstream
 * with the front-proxy client certificate), through kube-front-proxy (bearer
 * token) and through nginx, in short windows that alternate between the
 * configurations round after round; medians and ratios come from report.ts.
 *
 * Every server and the load generator are child processes; the harness only
 * starts them, hands out jobs, and reads /proc for CPU and memory. Each
 * scenario is a module of bench/scenarios/; this file runs the chosen ones in
 * order and gathers what they found.
 */
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machine, versions } from './machine.js';
import { nginxHttp2, nginxVersion } from './nginx.js';
import { HTTP2_MAX_STREAMS, type BenchOptions } from './options.js';
import type { BenchResults, Curve, Figure } from './results.js';
import type { Scenario, ScenarioContext } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';
import type { ServerPool } from './servers/pool.js';
import { upstreamHttp2Default } from './servers/kube-front-proxy.js';
import { startStack } from './stack.js';
import { Teardown } from './teardown.js';

export { NOISY_CORES } from './cpu-meter.js';
export { FULL, HTTP2_MAX_STREAMS, SMOKE, type BenchOptions } from './options.js';
export { DIRECT, H2, HTTP_PROXY, KFP, KFP_H2, KFP_UPSTREAM_H1, NGINX, NGINX_H2, NOAUTH, OAUTH2_PROXY, type BenchResults, type Curve, type Figure, type Measurement } from './results.js';

// The profile window repeats scenario 1's, so it runs with it.
const chosen = (s: Scenario, options: BenchOptions) => (s.id === 'profile' ? options.profile && options.scenarios.includes(1) : options.scenarios.includes(s.id));

/** Runs the chosen scenarios and returns every figure; stops everything it started, whatever happened. */
export async function runBench(options: BenchOptions): Promise<BenchResults> {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'kfp-bench-'));
  mkdirSync(options.outDir, { recursive: true });
  const teardown = new Teardown();
  const stuck = new Set<string>();
  const figures: Figure[] = [];
  const curves: { s2: Curve[]; s4: Curve[] } = { s2: [], s4: [] };
  const notes: string[] = [];
  const problems: string[] = [];
  let profile: BenchResults['profile'];

  try {
    options.log(`work folder ${work}`);
    const stack = await startStack(options, work, teardown, stuck);
    const scenarios = SCENARIOS.filter((s) => chosen(s, options));
    // Start what the chosen scenarios share all at once: each takes a second or more to load.
    await stack.servers.startAll(scenarios.flatMap((s) => s.needs(options)));
    const ctx: ScenarioContext = { ...stack, options, nginxH2: nginxHttp2(), earlier: figures, problem: (line) => problems.push(line) };
    notes.push(...(await serverNotes(options, stack.servers, ctx.nginxH2)));
    for (const scenario of scenarios) {
      const found = await scenario.run(ctx);
      figures.push(...found.figures);
      notes.push(...(found.notes ?? []));
      curves.s2.push(...(found.curves?.s2 ?? []));
      curves.s4.push(...(found.curves?.s4 ?? []));
      profile = found.profile ?? profile;
    }
  } finally {
    problems.push(...(await teardown.run()));
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
    errors: problems,
  };
}

/** The notes on the servers themselves, before any scenario's: the (h2) rows, and the proxy's worker processes. */
async function serverNotes(options: BenchOptions, servers: ServerPool, nginxH2: boolean): Promise<string[]> {
  const notes: string[] = [];
  const has = (...n: number[]) => n.some((x) => options.scenarios.includes(x));
  if (has(1, 4)) {
    notes.push(
      nginxH2
        ? `The "(h2)" rows are the same servers with clients over HTTP/2 (ALPN h2; nginx with \`http2_max_concurrent_streams ${HTTP2_MAX_STREAMS}\`, the proxy's default limit). ` +
            'direct stays HTTP/1.1 (the upstream stand-in, like the proxies\' upstream side, speaks HTTP/1.1 only), so their "vs direct" compares with HTTP/1.1 direct, and their "vs nginx" with nginx (h2).'
        : `The "(h2)" rows are kube-front-proxy with clients over HTTP/2 (ALPN h2); this nginx (${nginxVersion() ?? 'not installed'}, Debian's nginx-light) lacks http_v2_module (\`nginx -V\`), so there is no nginx (h2) row. ` +
            'direct stays HTTP/1.1 (the upstream stand-in, like the proxies\' upstream side, speaks HTTP/1.1 only), so "vs direct" compares with HTTP/1.1 direct.',
    );
  }
  const mode = upstreamHttp2Default(servers.env);
  notes.push(
    options.upstreamHttp2
      ? `The upstream stand-in offered h2 (node:http2, 100 streams a connection as kube-apiserver 1.37; HTTP/1.1 by ALPN for direct, nginx and upgrades), and kube-front-proxy ran with its default upstream.http2, \`${mode}\`` +
          (mode === 'auto' ? ": the proxy's requests and watches were streams of a few upstream connections." : ', so it spoke HTTP/1.1 upstream all the same.')
      : `The upstream stand-in offered HTTP/1.1 only (\`--upstream-http2 off\`), so kube-front-proxy (upstream.http2 \`${mode}\`, its default) spoke HTTP/1.1 upstream, a connection per request in flight and per watch.`,
  );
  // Every scenario but 4 (whose servers may be fresh each window) uses the shared proxy.
  if (has(1, 2, 3, 5, 6, 7)) {
    const { workers } = await servers.get('kfp');
    notes.push(`kube-front-proxy ran with ${workers} worker process(es)${options.proxyWorkers === undefined ? ' (its default)' : ' (listen.workers)'}; its CPU is summed over all its processes.`);
  }
  return notes;
}
