/**
 * `npm run bench`: runs every scenario of issue 5 and writes bench/RESULTS.md,
 * bench/latency.png and bench/out/results.json. `--help` lists the knobs.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR } from './children.js';
import { runBench } from './harness.js';
import { FULL, SMOKE, type BenchOptions } from './options.js';
import { checkTargets, renderPlot, renderReport } from './report.js';
import { BUILD_SCRIPT } from './servers/oauth2-proxy.js';

const HELP = `npm run bench [-- options]

  --scenarios 1,2,3,4,5,6,7,8 which scenarios (default all)
  --rounds N                rounds of alternating windows (default ${FULL.rounds})
  --window S                seconds per window (default ${FULL.windowMs / 1000})
  --warmup S                warm-up seconds before each window (default ${FULL.warmupMs / 1000})
  --connections N           keep-alive connections, scenarios 1-3 and 7 (default ${FULL.connections})
  --tokens N                distinct tokens per algorithm or credential, scenarios 3 and 7 (default ${FULL.tokens})
  --watches N               idle watches, scenarios 4 and 8 (default ${FULL.watches}; capped by the open-file limit)
  --tunnel-mib N            MiB through one tunnel, scenario 5 (default ${FULL.tunnelBytes / 2 ** 20})
  --proxy-workers N         kube-front-proxy's listen.workers (default: its own, one per core)
  --soak-minutes N          how long the soak's steady load runs, scenario 8 (default ${FULL.soakMs / 60_000})
  --upstream-http2 off      the upstream stand-in offers HTTP/1.1 only (default: h2 too, so kube-front-proxy's
                            default upstream.http2 can use it); direct, nginx and upgrades use HTTP/1.1 either way
  --no-profile              skip the --cpu-prof window
  --soak-profile            run the soak's proxy under --cpu-prof: a note says what its busy stretches
                            of 1, 2 and 5 ms and longer were spent on (profiles in bench/out/soak-profile)
  --no-oauth2-proxy-build   do not build oauth2-proxy for scenario 1 (go install, cached in
                            ~/.cache/kube-front-proxy/oauth2-proxy; a built one is still used)
  --smoke                   every scenario at tiny sizes (what the smoke test runs)
  --out DIR                 where RESULTS.md and latency.png go (default bench/)
  --keep                    keep the temporary folder (configs, logs, audit logs)`;

const { values } = parseArgs({
  options: {
    scenarios: { type: 'string' },
    rounds: { type: 'string' },
    window: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    tokens: { type: 'string' },
    watches: { type: 'string' },
    'tunnel-mib': { type: 'string' },
    'proxy-workers': { type: 'string' },
    'soak-minutes': { type: 'string' },
    'upstream-http2': { type: 'string' },
    'no-profile': { type: 'boolean' },
    'soak-profile': { type: 'boolean' },
    'no-oauth2-proxy-build': { type: 'boolean' },
    smoke: { type: 'boolean' },
    out: { type: 'string' },
    keep: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}

const base = values.smoke ? SMOKE : FULL;
const n = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v));
const outDir = values.out ?? BENCH_DIR;
mkdirSync(outDir, { recursive: true });
const workOut = join(BENCH_DIR, 'out');
mkdirSync(workOut, { recursive: true });
const options: BenchOptions = {
  ...base,
  scenarios: values.scenarios ? values.scenarios.split(',').map(Number) : base.scenarios,
  rounds: n(values.rounds, base.rounds),
  windowMs: n(values.window, base.windowMs / 1000) * 1000,
  warmupMs: n(values.warmup, base.warmupMs / 1000) * 1000,
  connections: n(values.connections, base.connections),
  tokens: n(values.tokens, base.tokens),
  watches: n(values.watches, base.watches),
  tunnelBytes: n(values['tunnel-mib'], base.tunnelBytes / 2 ** 20) * 2 ** 20,
  soakMs: n(values['soak-minutes'], base.soakMs / 60_000) * 60_000,
  profile: values['no-profile'] ? false : base.profile,
  soakProfile: values['soak-profile'] === true,
  ...(values['proxy-workers'] !== undefined && { proxyWorkers: Number(values['proxy-workers']) }),
  ...(values['upstream-http2'] !== undefined && { upstreamHttp2: upstreamHttp2(values['upstream-http2']) }),
  outDir: workOut,
  keepWorkDir: values.keep === true,
  log: (line) => process.stderr.write(`${line}\n`),
};

/** --upstream-http2: off, or on (auto, the proxy's word for it) as by default. */
function upstreamHttp2(value: string): boolean {
  if (value === 'off') return false;
  if (value === 'on' || value === 'auto') return true;
  process.stderr.write(`--upstream-http2 ${value}: off or auto\n`);
  process.exit(2);
}

// Scenario 1's oauth2-proxy row (issue 15): built once, then reused; a failed build leaves the row out.
if (options.scenarios.includes(1) && !values.smoke && !values['no-oauth2-proxy-build']) {
  const build = spawnSync('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 15 * 60_000 });
  if (build.status !== 0) process.stderr.write(`${BUILD_SCRIPT} failed (${build.error?.message ?? `exit ${build.status}`}): no oauth2-proxy row\n`);
}

const results = await runBench(options);
writeFileSync(join(workOut, 'results.json'), JSON.stringify(results, null, 2));
mkdirSync(join(workOut, 'plot-data'), { recursive: true });
const png = join(outDir, 'latency.png');
const plot = renderPlot(results, png, join(workOut, 'plot-data'));
const report = renderReport(results, plot.written ? png : undefined);
writeFileSync(join(outDir, 'RESULTS.md'), report);
process.stderr.write(`\nwrote ${join(outDir, 'RESULTS.md')}${plot.written ? ` and ${png}` : ` (no plot: ${plot.why})`}\n`);
for (const t of checkTargets(results)) {
  process.stderr.write(`  scenario ${t.scenario}: ${t.target}: ${t.measured} ${t.met === undefined ? '' : t.met ? 'met' : 'MISSED'}\n`);
}
if (results.errors.length) {
  process.stderr.write(`\n${results.errors.length} problem(s) during the run:\n${results.errors.map((e) => `  ${e}`).join('\n')}\n`);
  process.exitCode = 1;
}
