/**
 * Browser single sign-on, assembled from config: the session store, the
 * OpenID Connect client (discovered in the background, retried until it
 * works), the session authenticator and the login routes.
 */
import { readFile } from 'node:fs/promises';
import type { TokenAuthenticator } from '../authn/authenticator.js';
import { JwksCache } from '../authn/jwt/jwks.js';
import { createSessionAuthenticator, type SessionAuthenticator } from './session-authenticator.js';
import type { Config, SessionConfig } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { createLogoutTokenVerifier } from './backchannel.js';
import { providerAgent, retryUntilDone } from '../authn/idp.js';
import { discoverClient, type OidcClient } from './oidc-client.js';
import { createLoginHosts } from './login-hosts.js';
import { createLoginState } from './login-state.js';
import { createLoginRoutes, type LoginRoutes } from './routes.js';
import { readLoginSecrets } from './secrets.js';
import { createSessionMiddleware, sessionAccessToken } from './session.js';
import type { ClientRequest } from '../request/client.js';
import { createMemoryBackend } from './store/memory.js';
import type { SessionBackend } from './store/types.js';

export interface Login {
  readonly prefix: string;
  readonly routes: LoginRoutes;
  /** The session cookie as a credential, for the authenticator chain. */
  readonly authenticate: SessionAuthenticator;
  readonly cookieName: string;
  /** Where an anonymous browser on `authority` asking for `target` goes to sign in. */
  readonly startURL: (authority: string | undefined, target: string) => string;
  /**
   * True for the cookies the proxy itself sets (the session cookie, the login-state
   * cookie): an upstream must not set them, nor see them.
   */
  ownsCookie(name: string): boolean;
  /** The session's access token from the provider (after the session authenticator read the request). */
  accessToken(req: ClientRequest): string | undefined;
  /** True for the login routes' own paths (a plain function: the pipeline is handed it). */
  readonly isLoginPath: (path: string) => boolean;
  notReady(): string[];
  close(): Promise<void>;
}


export async function createLogin(config: Config, tokens: TokenAuthenticator, logger: Logger): Promise<Login> {
  const session = config.authentication.session as SessionConfig;
  const log = logger.child({ component: 'login' });
  const jwtEntry = config.authentication.jwt.find((j) => j.issuer.url === session.oidc.issuerURL)!;
  const secrets = readLoginSecrets(session);
  const backend = await createBackend(session, log);
  const middleware = createSessionMiddleware(session, backend, secrets.cookieSecrets);
  const loginState = createLoginState({ secrets: secrets.cookieSecrets });
  // The login's own CA file, else whatever CA the jwt entry of the same issuer trusts.
  const agent = await providerAgent(
    session.oidc.certificateAuthorityFile
      ? { file: session.oidc.certificateAuthorityFile }
      : { pem: jwtEntry.issuer.certificateAuthority, file: jwtEntry.issuer.certificateAuthorityFile },
  );
  const abort = new AbortController();

  let client: OidcClient | undefined;
  let jwks: JwksCache | undefined;
  const discovering = retryUntilDone(
    async (attempt) => {
      const discovered = await discoverClient(session.oidc, secrets.clientSecret, agent);
      const keys = new JwksCache({ url: discovered.serverMetadata().jwks_uri!, dispatcher: agent, refetchIntervalMs: jwtEntry.jwksRefetchInterval, logger: log, signal: abort.signal });
      await keys.load();
      [client, jwks] = [discovered, keys];
      log.info({ issuer: session.oidc.issuerURL, attempt }, 'login provider ready');
    },
    { signal: abort.signal, onFailure: (failure) => log.warn({ issuer: session.oidc.issuerURL, ...failure }, 'login provider discovery failed; retrying') },
  );

  const hosts = createLoginHosts({
    redirectURL: session.oidc.redirectURL,
    pathPrefix: session.pathPrefix,
    cookieDomain: session.cookie.domain,
    routeHosts: (config.routes ?? []).flatMap((route) => (route.host === undefined ? [] : [route.host])),
  });
  for (const pattern of hosts.foreignPatterns) {
    log.info({ host: pattern, callback: `https://${pattern}${session.pathPrefix}/callback` }, 'route host outside cookie.domain: it signs in on its own; register its callback at the provider');
  }
  const authenticateSession = createSessionAuthenticator({ config: session, middleware, backend, client: () => client, tokens, hostOnly: hosts.hostOnly, logger: log });
  const routes = createLoginRoutes({
    config: session,
    middleware,
    backend,
    loginState,
    hosts,
    client: () => client,
    tokens,
    authenticateSession,
    logoutTokens: createLogoutTokenVerifier(session.oidc.issuerURL, session.oidc.clientID, () => jwks?.getKey),
    kubeconfigCA: session.kubeconfig.certificateAuthorityFile ? await readFile(session.kubeconfig.certificateAuthorityFile, 'utf8') : undefined,
    logger: log,
  });

  const prefix = session.pathPrefix;
  return {
    prefix,
    routes,
    cookieName: session.cookie.name,
    startURL: hosts.startURL,
    ownsCookie: (name) => name === session.cookie.name || name === loginState.cookieName,
    authenticate: authenticateSession,
    accessToken: sessionAccessToken,
    isLoginPath: (path) => path === prefix || path.startsWith(`${prefix}/`),
    notReady: () => [...(client ? [] : ['login provider (discovery not done yet)']), ...(backend.healthy() ? [] : ['session store'])],
    close: async () => {
      abort.abort();
      await discovering;
      await Promise.all([backend.close(), agent.close()]);
    },
  };
}

async function createBackend(session: SessionConfig, logger: Logger): Promise<SessionBackend> {
  const { store, cookie } = session;
  if (store.type !== 'redis') return createMemoryBackend({ maxEntries: store.maxEntries, idleTimeoutMs: cookie.idleTimeout });
  // Imported only when configured: the Redis client and connect-redis are about 13 MiB per process.
  const { createRedisBackend } = await import('./store/redis.js');
  return createRedisBackend({ url: store.redis.url, keyPrefix: store.redis.keyPrefix, idleTimeoutMs: cookie.idleTimeout, maxAgeMs: cookie.maxAge, logger });
}
