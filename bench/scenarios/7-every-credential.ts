/**
 * Scenario 7: what each credential costs (issue 12), side by side with the JWT
 * rows and the direct connection in the same run. Keep-alive requests/s with
 * a client certificate, static tokens, a token webhook and TokenReview (cache
 * warm and cold), and passthrough; then a new TLS connection per request, where
 * a client certificate is verified at every handshake (x509 "cold").
 *
 * The webhook and TokenReview answers come from the bench upstream
 * (bench/upstream.ts), as kube-apiserver's TokenReview API would: the real
 * kube-apiserver is not in the bench, so a review costs a local HTTPS round trip
 * to a server that answers from a prefix check. Each credential has a proxy of
 * its own, so no row pays for another's misses in the chain.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeBenchCredentials } from '../credentials.js';
import { POD_PATH } from '../fixtures.js';
import { DIRECT, KFP, newFigure } from '../results.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { startProxy } from '../servers/kube-front-proxy.js';
import { slug, type Server } from '../servers/server.js';
import { mintTokens, writeTokens } from '../tokens.js';
import { closedRounds, type ClosedRun } from '../windows.js';

export const JWT_WARM = `${KFP} JWT RS256 cache warm`;
export const JWT_NEW_CONNECTION = `${KFP} JWT, new connection`;

export const everyCredential: Scenario = {
  id: 7,
  needs: () => ['kfp', 'kfpNoCache'],
  async run(ctx) {
    const { options, env } = ctx;
    const n = options.tokens;
    options.log(`scenario 7: every credential, ${n} distinct tokens each, cache warm and cold; x509 kept alive and on a new connection per request`);
    const creds = await writeBenchCredentials(env, n);
    const jwtTokens = writeTokens(join(env.work, 'credentials-jwt-rs256.json'), await mintTokens(ctx.issuer, 'RS256', n));
    const review = (configFile: string, cacheTTL: string) => ({ configFile, cacheTTL });
    const started = new Map<string, Promise<Server>>();
    /** Each proxy's audit method: every request it answered must have been decided by that credential. */
    const methods = new Map<string, string>();
    const fresh = (name: string, method: string, authentication: Record<string, unknown>, clientCAFile?: string) => {
      const server = ctx.servers.fresh((e) => startProxy(e, `${KFP} ${name}`, { authentication, ...(clientCAFile && { clientCAFile }) }));
      started.set(name, server);
      methods.set(`${KFP} ${name}`, method);
      return () => server;
    };
    // Started together: each takes a second or more to load.
    const x509 = fresh('x509', 'x509', {}, creds.clientCA);
    const statics = fresh('static tokens', 'static_token', { staticTokenFile: creds.staticTokenFile });
    const webhookWarm = fresh('webhook', 'webhook', { webhook: review(creds.webhookKubeconfig, '2m') });
    const webhookCold = fresh('webhook cache off', 'webhook', { webhook: review(creds.webhookKubeconfig, '0s') });
    const reviewWarm = fresh('TokenReview', 'token_review', { tokenReview: { kubeconfig: creds.tokenReviewKubeconfig, cacheTTL: '10s' } });
    const reviewCold = fresh('TokenReview cache off', 'token_review', { tokenReview: { kubeconfig: creds.tokenReviewKubeconfig, cacheTTL: '0s' } });
    const passthrough = fresh('passthrough', 'passthrough', { passthrough: true });
    await Promise.all(started.values());

    const keepAlive = { path: POD_PATH, connections: options.connections, warmupMs: options.warmupMs, durationMs: options.windowMs };
    const warmJob = { ...keepAlive, warmupRequests: n };
    const shared = (which: 'kfp' | 'kfpNoCache') => () => ctx.servers.get(which);
    const figure = newFigure({
      id: 's7', scenario: 7, title: `requests/s by credential, ${n} distinct tokens each, ${options.connections} keep-alive connections`, unit: 'req/s',
      higherIsBetter: true, compare: 'ratio', cpuUnit: 'µs/req', baseline: JWT_WARM,
    });
    const runs: ClosedRun[] = [
      { config: DIRECT, server: async () => ctx.servers.direct, job: keepAlive },
      { config: JWT_WARM, server: shared('kfp'), job: warmJob, target: { tokensFile: jwtTokens } },
      { config: `${KFP} JWT RS256 cache cold`, server: shared('kfpNoCache'), job: keepAlive, target: { tokensFile: jwtTokens } },
      // No bearer token: the certificate, verified once per connection, is the identity.
      { config: `${KFP} x509, kept alive`, server: x509, job: keepAlive, target: { headers: [], certFile: creds.clientCert, keyFile: creds.clientKey } },
      { config: `${KFP} static token`, server: statics, job: keepAlive, target: { tokensFile: creds.staticTokens } },
      { config: `${KFP} webhook cache warm`, server: webhookWarm, job: warmJob, target: { tokensFile: creds.webhookTokens } },
      { config: `${KFP} webhook cache cold`, server: webhookCold, job: keepAlive, target: { tokensFile: creds.webhookTokens } },
      { config: `${KFP} TokenReview cache warm`, server: reviewWarm, job: warmJob, target: { tokensFile: creds.tokenReviewTokens } },
      { config: `${KFP} TokenReview cache cold`, server: reviewCold, job: keepAlive, target: { tokensFile: creds.tokenReviewTokens } },
      { config: `${KFP} passthrough`, server: passthrough, job: keepAlive, target: { tokensFile: creds.passthroughTokens } },
    ];
    await closedRounds(ctx, figure, runs);

    const churnJob = { ...keepAlive, connections: options.churnConnections, newConnectionPerRequest: true };
    const churn = newFigure({
      id: 's7-churn', scenario: 7, title: `requests/s with a new TLS connection per request, ${options.churnConnections} clients: a client certificate verified at every handshake`,
      unit: 'req/s', higherIsBetter: true, compare: 'ratio', cpuUnit: 'µs/req', baseline: JWT_NEW_CONNECTION,
    });
    await closedRounds(ctx, churn, [
      { config: DIRECT, server: async () => ctx.servers.direct, job: churnJob },
      { config: JWT_NEW_CONNECTION, server: shared('kfp'), job: churnJob },
      { config: `${KFP} x509, new connection`, server: x509, job: churnJob, target: { headers: [], certFile: creds.clientCert, keyFile: creds.clientKey } },
    ]);
    await Promise.all([...started.values()].map(async (s) => (await s).stop()));
    for (const [name, method] of methods) checkAuditMethod(ctx, name, method);

    const notes = [
      'Scenario 7 (issue 12): each credential through a proxy configured with that credential alone (and the bench issuer), so no row pays for another\'s misses in the chain. ' +
        '"cache warm" first sends one request per token, then cycles through them inside the cache TTL (webhook 2m, TokenReview 10s, JWT 10s); "cache cold" is the same with the cache TTL 0s (JWT: tokenCacheMaxEntries: 0), so every request is reviewed or verified. ' +
        'The webhook and TokenReview rows are the same code path (src/authn/token-review/) against a TokenReview server inside the bench upstream process, answering from a prefix check: the real kube-apiserver is not in the bench, so a cold row is the proxy\'s cost plus one local HTTPS round trip, not kube-apiserver\'s cost of a review. ' +
        'Passthrough forwards the token unread over a connection without the front-proxy certificate; the bench upstream accepts it from a prefix check. ' +
        'x509 "kept alive" verifies the client certificate once per connection; "new connection" does a full handshake (no session resumption) per request, as a new kubectl process does; its direct row (in that figure) is the upstream over a new connection per request too.',
    ];
    return { figures: [figure, churn], notes };
  },
};

/**
 * A row measures its credential only if the proxy's audit log says so: every
 * request it let through names `method` (the log is flushed once the proxy has stopped).
 */
function checkAuditMethod(ctx: ScenarioContext, name: string, method: string): void {
  const file = join(ctx.env.work, `${slug(name)}-audit.log`);
  const passed = readFileSync(file, 'utf8').split('\n').filter((line) => / kind=\S+ auth=/.test(line) && !/ auth=- /.test(line));
  const other = passed.filter((line) => !line.includes(` auth=${method} `));
  if (passed.length === 0 || other.length > 0) {
    ctx.problem(`s7 ${name}: ${passed.length} requests audited, ${other.length} not decided by auth=${method}${other[0] ? ` (first: ${/ auth=\S+/.exec(other[0])?.[0] ?? '?'})` : ''}`);
  }
}
