/**
 * Scenario 6: connection churn. Requests/s when every request opens a new TLS
 * connection with no session resumption, as a new kubectl process does.
 */
import { POD_PATH } from '../fixtures.js';
import { newFigure } from '../results.js';
import type { Scenario } from '../scenario.js';
import { closedRounds } from '../windows.js';

export const connectionChurn: Scenario = {
  id: 6,
  needs: () => ['kfp', 'nginx'],
  async run(ctx) {
    const { options } = ctx;
    options.log(`scenario 6: connection churn, a new TLS connection per request, ${options.churnConnections} clients`);
    const figure = newFigure({
      id: 's6', scenario: 6, title: `requests/s with a new TLS connection per request (no session resumption), ${options.churnConnections} clients`, unit: 'req/s',
      higherIsBetter: true, compare: 'ratio', cpuUnit: 'µs/req',
    });
    const job = { path: POD_PATH, connections: options.churnConnections, warmupMs: options.warmupMs, durationMs: options.windowMs, newConnectionPerRequest: true };
    const servers = await ctx.servers.compared();
    await closedRounds(ctx, figure, servers.map((server) => ({ config: server.name, server: async () => server, job })));
    return { figures: [figure] };
  },
};
