/**
 * Scenario 1: the maximum requests/s of a bearer GET on keep-alive
 * connections, JWT cache warm (one token), for every configuration: direct,
 * kube-front-proxy over HTTP/1.1 and HTTP/2, nginx (and nginx over HTTP/2),
 * the plain http-proxy forwarder, and the no-auth build.
 */
import { POD_PATH } from '../fixtures.js';
import { DIRECT, HTTP_PROXY, KFP, KFP_H2, NGINX, NGINX_H2, NOAUTH, newFigure } from '../results.js';
import type { Scenario } from '../scenario.js';
import type { SharedServer } from '../servers/pool.js';
import { closedRounds, type ClosedRun } from '../windows.js';

export const maxRequests: Scenario = {
  id: 1,
  needs: () => ['kfp', 'nginx', 'forwarder', 'kfpNoAuth'],
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
      run(NGINX, 'nginx'),
      ...(ctx.nginxH2 ? [run(NGINX_H2, 'nginx', true)] : []),
      run(HTTP_PROXY, 'forwarder'),
      run(NOAUTH, 'kfpNoAuth'),
    ]);
    return { figures: [figure], notes };
  },
};
