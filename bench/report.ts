/**
 * From a run's results to bench/RESULTS.md: the machine and versions, every
 * figure with its median, each window, ratios to direct and nginx and the CPU
 * the proxy spent, the issue's targets met or missed, the profile, and a
 * latency plot (gnuplot, PNG).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { NOISY_CORES } from './cpu-meter.js';
import { FLAT_RSS_PCT_PER_MIN } from './scenarios/8-soak.js';
import { DIRECT, H2, KFP, KFP_H2, NGINX, NGINX_H2, HTTP_PROXY, NOAUTH, type BenchResults, type Curve, type Figure } from './results.js';
import { median } from './stats.js';

/** Median value (and median CPU) of one configuration in one figure. */
export function medianOf(figure: Figure | undefined, config: string): { value: number; cpuUs: number } {
  const samples = figure?.samples.filter((s) => s.config === config) ?? [];
  const cpu = samples.map((s) => s.cpuUs).filter((c): c is number => c !== undefined);
  return { value: median(samples.map((s) => s.value)), cpuUs: cpu.length ? median(cpu) : Number.NaN };
}

export interface TargetCheck {
  readonly scenario: number;
  readonly target: string;
  readonly measured: string;
  /** undefined: not measured in this run. */
  readonly met: boolean | undefined;
}

const byId = (r: BenchResults, id: string) => r.figures.find((f) => f.id === id);
const ok = (n: number) => !Number.isNaN(n);
const x = (n: number) => `${n.toFixed(2)}×`;
/** Ratios in the targets: three decimals, so 1.499× does not read as 1.50× missed. */
const x3 = (n: number) => `${n.toFixed(3)}×`;
const ms = (n: number) => `${n.toFixed(2)} ms`;

/** The nginx row an (h2) row compares with: nginx (h2) when there is one. */
function nginxFor(figure: Figure | undefined, config: string): number {
  const h2 = medianOf(figure, NGINX_H2).value;
  return config.endsWith(H2) && ok(h2) ? h2 : medianOf(figure, NGINX).value;
}

/**
 * The targets of issue 5, each against this run's medians. They are judged on
 * the HTTP/1.1 rows; where there is an (h2) row its figure is shown beside.
 */
export function checkTargets(r: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  type Beside = readonly [values: number[], measured: () => string];
  const add = (scenario: number, target: string, values: number[], measured: () => string, met: () => boolean, h2?: Beside) => {
    const have = values.every(ok);
    const beside = h2 && h2[0].every(ok) ? ` (h2: ${h2[1]()})` : '';
    checks.push({ scenario, target, measured: have ? `${measured()}${beside}` : 'not measured', met: have ? met() : undefined });
  };

  const s1 = byId(r, 's1');
  const [d1, k1, n1, h1, k1h2] = [DIRECT, KFP, NGINX, HTTP_PROXY, KFP_H2].map((c) => medianOf(s1, c).value) as [number, number, number, number, number];
  const n1h2 = nginxFor(s1, KFP_H2);
  add(1, '≥ 30% of direct requests/s', [d1, k1], () => x3(k1 / d1), () => k1 / d1 >= 0.3, [[d1, k1h2], () => x3(k1h2 / d1)]);
  add(1, '≥ 0.45× nginx', [n1, k1], () => x3(k1 / n1), () => k1 / n1 >= 0.45, [[n1h2, k1h2], () => `${x3(k1h2 / n1h2)} ${ok(medianOf(s1, NGINX_H2).value) ? NGINX_H2 : NGINX}`]);
  add(1, '≥ 1.5× a plain http-proxy forwarder', [h1, k1], () => x3(k1 / h1), () => k1 / h1 >= 1.5, [[h1, k1h2], () => x3(k1h2 / h1)]);

  for (const [id, label, slack] of [['s2-p50', 'p50', 0.3], ['s2-p99', 'p99', 1.5]] as const) {
    const f = byId(r, id);
    const [d, k] = [medianOf(f, DIRECT).value, medianOf(f, KFP).value];
    add(2, `${label} ≤ direct + ${slack} ms`, [d, k], () => `${ms(k)} vs direct ${ms(d)} (+${(k - d).toFixed(2)} ms)`, () => k <= d + slack);
  }

  const s3 = byId(r, 's3');
  const base = medianOf(s3, NOAUTH).value;
  for (const alg of ['RS256', 'ES256']) {
    for (const [state, floor] of [['warm', 0.95], ['cold', 0.75]] as const) {
      const v = medianOf(s3, `${KFP} ${alg} cache ${state}`).value;
      add(3, `${alg}, cache ${state}: ≥ ${floor * 100}% of the no-auth build`, [v, base], () => x3(v / base), () => v / base >= floor);
    }
  }

  const [rss, rssH2] = [KFP, KFP_H2].map((c) => medianOf(byId(r, 's4-rss'), c).value) as [number, number];
  add(4, '≤ 64 KiB RSS per idle watch', [rss], () => `${rss.toFixed(1)} KiB`, () => rss <= 64, [[rssH2], () => `${rssH2.toFixed(1)} KiB`]);
  const s4 = byId(r, 's4-p99');
  const [d4, k4, k4h2] = [DIRECT, KFP, KFP_H2].map((c) => medianOf(s4, c).value) as [number, number, number];
  add(4, 'event delay p99 ≤ direct + 5 ms', [d4, k4], () => `${ms(k4)} vs direct ${ms(d4)}`, () => k4 <= d4 + 5, [[k4h2], () => ms(k4h2)]);

  const t = byId(r, 's5-tunnel');
  const [d5, k5] = [medianOf(t, DIRECT).value, medianOf(t, KFP).value];
  add(5, 'tunnel bytes/s ≥ 70% of direct', [d5, k5], () => x3(k5 / d5), () => k5 / d5 >= 0.7);
  const s5 = byId(r, 's5-setup-p99');
  const [ds, ks] = [medianOf(s5, DIRECT).value, medianOf(s5, KFP).value];
  add(5, 'upgrade setup p99 ≤ direct + 10 ms', [ds, ks], () => `${ms(ks)} vs direct ${ms(ds)}`, () => ks <= ds + 10);

  const s6 = byId(r, 's6');
  const [d6, k6] = [medianOf(s6, DIRECT).value, medianOf(s6, KFP).value];
  add(6, '≥ 70% of direct requests/s', [d6, k6], () => x3(k6 / d6), () => k6 / d6 >= 0.7);
  soakTargets(r, add);
  return checks;
}

/** The soak's targets (issue 15), from its figures and what their samples keep. */
function soakTargets(r: BenchResults, add: (scenario: number, target: string, values: number[], measured: () => string, met: () => boolean) => void): void {
  const sample = (id: string, config: string) => byId(r, id)?.samples.find((s) => s.config === config);
  const errors = sample('s8-errors', KFP);
  const e = errors?.value ?? Number.NaN;
  const kinds = Object.entries(errors?.extra ?? {}).filter(([k, v]) => /Failed|EndedEarly|Errors|Not2xx/.test(k) && Number(v) > 0);
  add(8, 'soak: no error', [e], () => `${e}${kinds.length ? ` (${kinds.map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`, () => e === 0);
  const slope = sample('s8-rss-slope', KFP);
  const pct = Number(slope?.extra?.pctPerMin ?? Number.NaN);
  add(
    8,
    `soak: RSS flat after warm-up (slope < ${FLAT_RSS_PCT_PER_MIN}% of RSS a minute)`,
    [pct],
    () => `${Math.round(slope!.value).toLocaleString('en-US')} KiB/min, ${pct.toFixed(3)}% of ${Math.round(Number(slope!.extra?.meanRssKiB) / 1024)} MiB a minute`,
    () => pct < FLAT_RSS_PCT_PER_MIN,
  );
  const p99 = byId(r, 's8-p99');
  const [d, k] = [medianOf(p99, DIRECT).value, medianOf(p99, KFP).value];
  add(8, 'soak: event delay p99 ≤ direct + 2 ms (the same seconds)', [d, k], () => `${ms(k)} vs direct ${ms(d)} (${k >= d ? '+' : '−'}${Math.abs(k - d).toFixed(2)} ms)`, () => k <= d + 2);
  const [before, peak, after] = ['before the watches', 'peak', 'after'].map((c) => sample('s8-fds', `${KFP}: ${c}`));
  const [b, a] = [before?.value ?? Number.NaN, after?.value ?? Number.NaN];
  const allowance = Number(after?.extra?.allowance ?? 0);
  add(
    8,
    'soak: descriptors back to baseline after (± one per process)',
    [b, a],
    () => `${b} before, ${peak?.value} at peak, ${a} after ${Number(after?.extra?.afterS).toFixed(0)} s (allowance ${allowance}); against before: ${after?.extra?.changedFromBefore}`,
    () => a <= b + allowance,
  );
}

const num = (n: number, unit: string) => {
  if (!ok(n)) return '–';
  if (unit === 'ms') return n.toFixed(n < 10 ? 3 : 1);
  // Counts (errors, descriptors) as they are.
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
};

function comparison(f: Figure, value: number, against: number): string {
  if (!ok(value) || !ok(against)) return '';
  if (f.compare === 'difference') {
    const d = value - against;
    return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(2)} ms`;
  }
  return x(value / against);
}

/** The table of every figure: one row per configuration. */
export function figureTable(r: BenchResults): string {
  const lines = [
    '| # | figure | configuration | median | each window | vs direct | vs nginx | vs baseline | proxy CPU |',
    '|---|---|---|---:|---|---:|---:|---:|---:|',
  ];
  for (const f of r.figures) {
    const configs = [...new Set(f.samples.map((s) => s.config))];
    const ref = f.directFrom ? byId(r, f.directFrom) : f;
    const d = medianOf(ref, DIRECT).value;
    const b = f.baseline ? medianOf(f, f.baseline).value : Number.NaN;
    for (const config of configs) {
      const n = nginxFor(ref, config);
      const m = medianOf(f, config);
      const each = f.samples
        .filter((s) => s.config === config)
        .map((s) => `${num(s.value, f.unit)}${Number(s.extra?.foreignCores ?? 0) > NOISY_CORES ? '*' : ''}`)
        .join(' · ');
      const vsBase = f.baseline && config !== f.baseline ? `${comparison(f, m.value, b)} ${f.baseline === NOAUTH ? 'no-auth' : f.baseline}` : '';
      const cpu = ok(m.cpuUs) && f.cpuUnit ? `${Math.round(m.cpuUs).toLocaleString('en-US')} ${f.cpuUnit}` : '';
      lines.push(
        `| ${f.scenario} | ${f.title} (${f.unit}) | ${config} | ${num(m.value, f.unit)} | ${each} | ${comparison(f, m.value, d)}${f.directFrom && ok(d) ? '¹' : ''} | ${comparison(f, m.value, n)}${f.directFrom && ok(n) ? '¹' : ''} | ${vsBase} | ${cpu} |`,
      );
    }
  }
  return lines.join('\n');
}

/** Writes the plot with gnuplot; when it writes nothing, says why. */
export function renderPlot(r: BenchResults, png: string, dataDir: string): { written: true } | { written: false; why: string } {
  if (spawnSync('gnuplot', ['--version']).status !== 0) return { written: false, why: 'gnuplot is not installed' };
  // A "nines" axis: 0 at p0, 1 at p90, 2 at p99, 3 at p99.9.
  const nines = (p: number) => (p >= 100 ? 4 : -Math.log10(1 - p / 100));
  const files = (curves: Curve[], name: string) =>
    curves.map((c) => {
      const file = join(dataDir, `${name}-${c.config.replace(/[^a-z0-9]+/gi, '-')}.dat`);
      writeFileSync(file, c.points.map(([p, v]) => `${nines(p).toFixed(4)} ${v}`).join('\n') + '\n');
      return { file, title: c.config };
    });
  const panels = [
    { title: `Scenario 2: request latency at a fixed rate`, data: files(r.curves.s2, 's2') },
    { title: `Scenario 4: watch event delivery delay`, data: files(r.curves.s4, 's4') },
  ].filter((p) => p.data.length);
  if (!panels.length) return { written: false, why: 'scenarios 2 and 4 did not run' };
  const colors: Record<string, string> = { [DIRECT]: '#1b9e77', [KFP]: '#d95f02', [NGINX]: '#7570b3', [KFP_H2]: '#e7298a', [NGINX_H2]: '#66a61e' };
  const script = [
    `set terminal pngcairo size ${600 * panels.length},480 font "sans,10"`,
    `set output '${png}'`,
    `set multiplot layout 1,${panels.length}`,
    `set grid`,
    `set key top left`,
    `set xlabel 'percentile'`,
    `set ylabel 'ms'`,
    `set xtics ('0%%' 0, '50%%' ${nines(50)}, '90%%' 1, '99%%' 2, '99.9%%' 3)`,
    `set xrange [0:3]`,
    `set logscale y`,
    ...panels.flatMap((p) => [
      `set title '${p.title}'`,
      `plot ${p.data.map((d) => `'${d.file}' using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '${colors[d.title] ?? '#666666'}'${d.title.endsWith(H2) ? ' dt 2' : ''} title '${d.title}'`).join(', ')}`,
    ]),
    `unset multiplot`,
  ].join('\n');
  const run = spawnSync('gnuplot', [], { input: script, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`gnuplot failed: ${run.stderr}`);
  return { written: true };
}

const pct = (n: number) => `${(n * 100).toFixed(1)}%`;

/** How the windows, configurations and CPU figures were measured. */
function methodSection(o: BenchResults['options']): string[] {
  return [
    '## How it was measured',
    '',
    `Each configuration gets a ${o.windowMs / 1000} s window (after ${o.warmupMs / 1000} s of warm-up), and the configurations take turns, ` +
      `${o.rounds} rounds in a rotated order (scenario 4: ${o.watchRounds} rounds${o.freshWatchServers ? ', a fresh proxy and nginx each window' : ''}); ` +
      'the median of the windows is reported, and every window is listed. Everything runs on this machine: the load generator ' +
      '(bench/loadgen.ts, undici and raw TLS, a child process), the upstream (bench/upstream.ts), the issuer (in the harness, idle after start-up) and the proxy under test share its cores.',
    '',
    `- **direct**: the load generator talks to the upstream itself, with the front-proxy client certificate and the X-Remote-* headers the proxy would set.`,
    `- **kube-front-proxy**: the real entry point (src/cli), a bearer JWT on every request, audit log to a file, log level info.`,
    `- **nginx**: Debian's nginx, \`worker_processes auto\`, TLS in, keep-alive mutual TLS to the upstream with the same client certificate, static identity headers, no authentication, access log buffered to a file (bench/nginx.ts).`,
    `- **(h2)** rows: the same kube-front-proxy (or nginx) with its clients over HTTP/2 (ALPN h2, node:http2 in the load generator), many streams per connection: ` +
      `scenario 1 spreads its ${o.connections} requests in flight over ${o.http2Sessions} connections, scenario 4 puts ${o.http2Streams} watches on each. ` +
      'Upstream they are HTTP/1.1 as before, and direct is HTTP/1.1 only, so "vs direct" compares with HTTP/1.1 direct; "vs nginx" compares with nginx (h2) where there is one.',
    `- **http-proxy**: the npm http-proxy package behind a Node HTTPS server, keep-alive agent with the same client certificate, no authentication (bench/http-proxy-forwarder.ts).`,
    `- **proxy CPU** is user+system CPU time of the proxy's process tree (every thread, nginx's master and workers) over the measured window, per request (or per session, per MiB), from /proc.`,
    `- Scenario 6: direct pays a full mutual-TLS handshake (client certificate sent and verified) at the one-process upstream on every request; through a proxy only the client side is a new handshake, the proxy's upstream connections stay alive. So a proxy can beat direct there; its ratio to nginx says more.`,
    `- Fixed-rate latency is measured from the moment the load generator issues a request; requests that find all ${o.connections} connections busy wait in the generator's pool, and that wait counts.`,
    '',
  ];
}

/** Where the proxy's time went in the --cpu-prof window. */
function profileSection(p: NonNullable<BenchResults['profile']>): string[] {
  return [
    '## Where the proxy\'s time goes (scenario 1, --cpu-prof)',
    '',
    `One extra scenario-1 window (${Math.round(p.rps).toLocaleString('en-US')} req/s, ${Math.round(p.cpuUsPerRequest)} µs CPU per request under the profiler) ` +
      `with the proxy started as \`node --cpu-prof --cpu-prof-interval 500\`; ${p.files} profile(s) (one per worker; the primary's is left out), ` +
      `${Math.round(p.totalMs)} ms of main-thread samples inside the ${Math.round(p.windowMs ?? 0)} ms measured window, ${pct(p.idleShare)} of them idle. ` +
      'Shares below are of the busy (not idle) time. Self time by area:',
    '',
    '| area | self time |',
    '|---|---:|',
    ...p.areas.filter((a) => a.share >= 0.002).map((a) => `| ${a.name} | ${pct(a.share)} |`),
    '',
    'Top functions by self time:',
    '',
    '| function | self |',
    '|---|---:|',
    ...p.selfTop.map((a) => `| \`${a.name}\` | ${pct(a.share)} |`),
    '',
    'The proxy\'s own functions (src/) by inclusive time:',
    '',
    '| function | inclusive |',
    '|---|---:|',
    ...p.ownInclusiveTop.map((a) => `| \`${a.name}\` | ${pct(a.share)} |`),
    '',
  ];
}

/** RESULTS.md. `plot` is the PNG's file name beside it, when one was made. */
export function renderReport(r: BenchResults, plot: string | undefined): string {
  const o = r.options;
  const targets = checkTargets(r);
  const out: string[] = [];
  out.push(
    '# kube-front-proxy benchmark results',
    '',
    `Generated by \`npm run bench\` (bench/run.ts) on ${r.startedAt}, in ${Math.round(r.seconds)} s. Do not edit: run it again.`,
    '',
    '## Machine and versions',
    '',
    `- machine: ${r.machine.nproc} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB memory, Linux ${r.machine.kernel}, open-file limit ${r.machine.openFiles}`,
    `- node ${r.versions.node}, undici ${r.versions.undici}, nginx ${r.versions.nginx}, oauth2-proxy ${r.versions.oauth2Proxy}`,
    `- kube-front-proxy git ${r.versions.kubeFrontProxy}`,
    `- upstream: ${r.versions.upstream}`,
    '',
    ...methodSection(o),
    '## Every figure',
    '',
    figureTable(r),
    '',
    '¹ Scenario 3 has no direct or nginx windows of its own: its ratios use scenario 1\'s direct and nginx medians (the same request with one token).',
    `\\* A window during which other work on this shared machine (not the harness or its children) used more than ${NOISY_CORES} core; ` +
      `the harness waits up to ${o.quietMs / 1000} s for quiet before each window, then measures anyway.`,
    '',
    '## Targets (issues 5 and 15)',
    '',
    'Judged on the HTTP/1.1 rows; "(h2: …)" is the same measure for the kube-front-proxy (h2) row, for comparison only.',
    '',
    '| # | target | measured | |',
    '|---|---|---|---|',
    ...targets.map((t) => `| ${t.scenario} | ${t.target} | ${t.measured} | ${t.met === undefined ? '–' : t.met ? 'met' : '**missed**'} |`),
    '',
  );
  if (plot) out.push('## Latency', '', `![latency percentiles](${basename(plot)})`, '');
  if (r.profile) out.push(...profileSection(r.profile));
  if (r.notes.length) out.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  if (r.errors.length) out.push('## Problems during the run', '', ...r.errors.map((e) => `- ${e}`), '');
  out.push(
    '## Reproduce',
    '',
    '```sh',
    'apt-get install -y nginx-light gnuplot-nox   # nginx to compare with; gnuplot for the plot',
    'npm ci',
    'npm run bench                                # every scenario, about 35 minutes; writes this file',
    'npm run bench -- --help                      # rounds, window, scenarios, sizes',
    '```',
    '',
  );
  return out.join('\n');
}
