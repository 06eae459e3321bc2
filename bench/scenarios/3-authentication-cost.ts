/**
 * Scenario 3: what authentication costs. Requests/s with many distinct RS256
 * and ES256 tokens, the token cache warm and cold (a proxy with the cache
 * off), an issuer mapped by CEL instead of claim and prefix, and a forward-auth
 * check with the same tokens, against the no-auth build; direct and nginx come from scenario 1.
 */
import { join } from 'node:path';
import { POD_PATH } from '../fixtures.js';

/** The proxy's forward-auth URL (authentication.session.pathPrefix's default, /oauth2, and /auth). */
const FORWARD_AUTH_PATH = '/oauth2/auth';
import { KFP, NOAUTH, newFigure } from '../results.js';
import type { Scenario } from '../scenario.js';
import type { SharedServer } from '../servers/pool.js';
import { mintTokens, writeTokens, type Alg } from '../tokens.js';
import { closedRounds, type ClosedRun } from '../windows.js';

export const authenticationCost: Scenario = {
  id: 3,
  needs: () => ['kfp', 'kfpNoAuth', 'kfpNoCache', 'kfpCel', 'kfpCelNoCache'],
  async run(ctx) {
    const { options, servers } = ctx;
    options.log(`scenario 3: authentication cost, ${options.tokens} distinct RS256 and ES256 tokens, cache warm and cold`);
    const files: Record<Alg, string> = {
      RS256: writeTokens(join(ctx.env.work, 'tokens-rs256.json'), await mintTokens(ctx.issuer, 'RS256', options.tokens)),
      ES256: writeTokens(join(ctx.env.work, 'tokens-es256.json'), await mintTokens(ctx.issuer, 'ES256', options.tokens)),
    };
    const figure = newFigure({
      id: 's3', scenario: 3, title: `requests/s with ${options.tokens} distinct tokens per algorithm, ${options.connections} connections`, unit: 'req/s',
      higherIsBetter: true, compare: 'ratio', cpuUnit: 'µs/req', baseline: NOAUTH, directFrom: 's1',
    });
    const notes = [
      'Scenario 3: "cache cold" is the same proxy with authentication.tokenCacheMaxEntries: 0, so every request verifies its token; ' +
        '"cache warm" first sends one request per token, then cycles through them inside the 10 s cache TTL. ' +
        'The no-auth build is the same command line and proxy with a constant identity injected as its authenticator through startProxy\'s dependency seam (bench/noauth-authenticator.ts).',
    ];
    const job = { path: POD_PATH, connections: options.connections, warmupMs: options.warmupMs, durationMs: options.windowMs };
    // Warm: one pass over every token before the window, so each is in the cache.
    const run = (config: string, server: SharedServer, alg: Alg, warm: boolean, path = POD_PATH): ClosedRun => ({
      config,
      server: () => servers.get(server),
      job: { ...job, path, ...(warm && { warmupRequests: options.tokens }) },
      target: { tokensFile: files[alg] },
    });
    await closedRounds(ctx, figure, [
      run(NOAUTH, 'kfpNoAuth', 'RS256', false),
      run(`${KFP} RS256 cache warm`, 'kfp', 'RS256', true),
      run(`${KFP} RS256 cache cold`, 'kfpNoCache', 'RS256', false),
      run(`${KFP} ES256 cache warm`, 'kfp', 'ES256', true),
      run(`${KFP} ES256 cache cold`, 'kfpNoCache', 'ES256', false),
      // The same RS256 tokens through an issuer whose identity is mapped by CEL (issue 11: within 5% warm, 25% cold).
      run(`${KFP} RS256 CEL-mapped cache warm`, 'kfpCel', 'RS256', true),
      run(`${KFP} RS256 CEL-mapped cache cold`, 'kfpCelNoCache', 'RS256', false),
      // A forward-auth check (issue 14) with the same tokens: authentication and a 202 with X-Auth-Request-*,
      // no upstream request; its cost next to the proxied request of the warm RS256 row.
      run(`${KFP} RS256 forward-auth check cache warm`, 'kfp', 'RS256', true, FORWARD_AUTH_PATH),
    ]);
    return { figures: [figure], notes };
  },
};
