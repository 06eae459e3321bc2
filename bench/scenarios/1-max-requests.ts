/**
 * Scenario 1: the maximum requests/s of a bearer GET on keep-alive
 * connections, JWT cache warm (one token), for every configuration: direct,
 * kube-front-proxy over HTTP/1.1 and HTTP/2, nginx (and nginx over HTTP/2),
 * the plain http-proxy forwarder, the no-auth build, and oauth2-proxy when it
 * is built (issue 15).
 */
import { POD_PATH } from '../fixtures.js';
import { DIRECT, HTTP_PROXY, KFP, KFP_H2, KFP_UPSTREAM_H1, NGINX, NGINX_H2, NOAUTH, OAUTH2_PROXY, newFigure, type Figure } from '../results.js';
import type { Scenario } from '../scenario.js';
import { oauth2ProxyBinary, oauth2ProxyFlags, oauth2ProxyVersion } from '../servers/oauth2-proxy.js';
import type { SharedServer } from '../servers/pool.js';
import type { ServerEnv } from '../servers/server.js';
import { median } from '../stats.js';
import { closedRounds, type ClosedRun } from '../windows.js';

export const maxRequests: Scenario = {
  id: 1,
  needs: (options) => ['kfp', 'nginx', 'forwarder', 'kfpNoAuth', ...(options.upstreamHttp2 !== false ? (['kfpUpstreamH1'] as const) : []), ...(oauth2ProxyBinary() ? (['oauth2Proxy'] as const) : [])],
  async run(ctx) {
    const { options, servers } = ctx;
    options.log('scenario 1: max requests/s, bearer GET, keep-alive, warm JWT cache');
    const figure = newFigure({
      id: 's1', scenario: 1, title: `max requests/s, ${options.connections} keep-alive connections, warm JWT cache`, unit: 'req/s',
      higherIsBetter: true, compare: 'ratio', cpuUnit: 'µs/req', baseline: HTTP_PROXY,
    });
    const notes = [
      `Scenario 1 (h2): the same ${options.connections} requests in flight, as streams spread round-robin over ${options.http2Sessions} HTTP/2 connections (bench/README.md says why this shape).`,
    ];
    const job = { path: POD_PATH, connections: options.connections, warmupMs: options.warmupMs, durationMs: options.windowMs };
    const h2 = { http2Sessions: options.http2Sessions };
    const run = (config: string, server: SharedServer | undefined, http2 = false): ClosedRun => ({
      config,
      server: () => (server ? servers.get(server) : Promise.resolve(servers.direct)),
      job: http2 ? { ...job, ...h2 } : job,
      ...(http2 && { extra: h2 }),
    });
    await closedRounds(ctx, figure, [
      run(DIRECT, undefined),
      run(KFP, 'kfp'),
      run(KFP_H2, 'kfp', true),
      // The default before issue 15 (undici's HTTP/1.1 pool upstream), beside it in the same run.
      ...(options.upstreamHttp2 !== false ? [run(KFP_UPSTREAM_H1, 'kfpUpstreamH1')] : []),
      run(NGINX, 'nginx'),
      ...(ctx.nginxH2 ? [run(NGINX_H2, 'nginx', true)] : []),
      run(HTTP_PROXY, 'forwarder'),
      run(NOAUTH, 'kfpNoAuth'),
      ...(oauth2ProxyBinary() ? [run(OAUTH2_PROXY, 'oauth2Proxy')] : []),
    ]);
    notes.push(oauth2ProxyNote(ctx.env), handshakeNote(figure));
    return { figures: [figure], notes };
  },
};

/** How the oauth2-proxy row was run, or why there is none. */
function oauth2ProxyNote(env: ServerEnv): string {
  if (!oauth2ProxyBinary()) {
    return 'No oauth2-proxy row: it is not built (scripts/oauth2-proxy/build.sh builds it; `npm run bench` runs that first unless `--smoke` or `--no-oauth2-proxy-build`).';
  }
  return (
    `oauth2-proxy ${oauth2ProxyVersion() ?? ''}, from its Go module (\`go install\`, scripts/oauth2-proxy/build.sh), ran as \`oauth2-proxy ${oauth2ProxyFlags(env)}\` ` +
    '(Go\'s HTTP client as shipped: over HTTP/1.1 it keeps 2 idle connections per upstream host, so most requests open a new one; when the upstream offers h2, as kube-apiserver and the stand-in do by default, it multiplexes every request over one HTTP/2 connection). It verifies the JWT on every request (it has no token cache), ' +
    'offers clients HTTP/1.1 only (so no "(h2)" row), and reaches the upstream without a client certificate (it has no option for one): ' +
    'its X-Forwarded-User is accepted there without the front-proxy certificate, which kube-apiserver would not do. bench/README.md lists what it does less or more than kube-front-proxy.'
  );
}

/** New upstream TLS connections and upstream CPU per request, the medians of each row's windows. */
function handshakeNote(figure: Figure): string {
  const rows = [...new Set(figure.samples.map((s) => s.config))].map((config) => {
    const of = (key: string) => median(figure.samples.filter((s) => s.config === config).map((s) => Number(s.extra?.[key] ?? Number.NaN)));
    const resumed = of('upstreamResumedPerRequest');
    const handshakes = `${of('upstreamHandshakesPerRequest').toFixed(3)}${resumed > 0 ? ` (+${resumed.toFixed(3)} resumed)` : ''}`;
    return `${config} ${handshakes}, ${Math.round(of('upstreamCpuUs'))} µs`;
  });
  return (
    'Scenario 1, new TLS connections at the upstream per request and the upstream\'s CPU per request (medians of the windows; ' +
    `a proxy that keeps its upstream connections alive shows 0 connections): ${rows.join('; ')}.`
  );
}
