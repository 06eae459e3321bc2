/**
 * The browser session cookie as a credential. The session holds the tokens of
 * a login; its identity is its id_token verified and mapped by the jwt[] entry
 * of the same issuer, so a session and a bearer token of one person map alike.
 * Tokens are refreshed shortly before the id_token expires, by one replica at
 * a time; a failed refresh ends the session. Two cookies by the session's name
 * (cookie tossing from a sibling subdomain) are refused, never resolved by order.
 */
import type { SessionConfig } from '../config/schema.js';
import { refresh, type OidcClient } from './oidc-client.js';
import { cookieValues } from './cookie-header.js';
import { destroySession, loadSession, reloadSession, saveSession, storedTokens, type SessionMiddleware, type SessionRequest } from './session.js';
import type { SessionBackend } from './store/types.js';
import type { Logger } from '../observe/logger.js';
import type { RequestAuthenticator, TokenAuthenticator } from '../authn/authenticator.js';
import { absent, rejected, withClaims } from '../request/identity.js';
import { judgedHost } from '../request/judged-host.js';
import { hostOf } from '../request/client.js';

export interface SessionAuthenticatorDeps {
  readonly config: SessionConfig;
  readonly middleware: SessionMiddleware;
  readonly backend: SessionBackend;
  /** Undefined until discovery of the provider has succeeded. */
  readonly client: () => OidcClient | undefined;
  readonly tokens: TokenAuthenticator;
  /** True for a foreign gateway host, whose sessions are its own (login-hosts.ts). */
  readonly hostOnly: (authority: string | undefined) => boolean;
  readonly logger: Logger;
}

/** The session cookie as a credential: `absent` without the cookie, so it takes its place in the chain. */
export type SessionAuthenticator = RequestAuthenticator;

export function createSessionAuthenticator(deps: SessionAuthenticatorDeps): SessionAuthenticator {
  const { config, backend, logger } = deps;

  /**
   * Refreshes under the cluster-wide lock; false when the session must end.
   * express-session's reload() replaces req.session, so it is read afresh after each.
   */
  async function refreshed(req: SessionRequest): Promise<boolean> {
    const result = await backend.withRefreshLock(req.sessionID!, async () => {
      // Another replica may have refreshed while we waited for the lock.
      await reloadSession(req.session!);
      const s = req.session!;
      if (!s.tokens || !needsRefresh(s.tokens.expiresAt)) return true;
      const client = deps.client();
      if (!s.tokens.refreshToken || !client) return false;
      try {
        const next = await refresh(client, s.tokens.refreshToken);
        s.tokens = storedTokens(next);
        await saveSession(s);
        return true;
      } catch (err) {
        logger.info({ err: (err as Error).message }, 'session refresh failed; ending the session');
        return false;
      }
    });
    // Lock not had in time: the holder is refreshing; use what the store has now.
    if (result === undefined) await reloadSession(req.session!);
    const tokens = req.session?.tokens;
    return result ?? Boolean(tokens && tokens.expiresAt > Date.now());
  }

  const needsRefresh = (expiresAt: number) => expiresAt - Date.now() < config.refreshBefore;

  return async (req, res) => {
    const cookies = cookieValues(req.headers.cookie, config.cookie.name).length;
    if (cookies === 0) return absent;
    // express-session would take the first; a planted cookie can be sent first.
    if (cookies > 1) return rejected('ambiguous_session_cookie');
    if (!backend.healthy()) return { kind: 'unavailable' };
    let sreq: SessionRequest;
    try {
      sreq = await loadSession(deps.middleware, req, res);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'session store unavailable');
      return { kind: 'unavailable' };
    }
    const s = sreq.session;
    // A forged, tampered or expired cookie yields a fresh, empty session.
    if (!s?.tokens || !s.createdAt) return absent;
    // A session is for the host it was made on (a foreign host's) or for the cookie's domain, never
    // both: whoever sees one host's cookie (its ingress, its app behind forward-auth) cannot use it elsewhere.
    const judged = judgedHost(req);
    if (s.host !== undefined ? hostOf(judged) !== s.host : deps.hostOnly(judged)) return rejected('session_for_another_host');
    if (Date.now() > s.createdAt + config.cookie.maxAge) {
      await destroySession(s).catch(() => {});
      return rejected('session_expired');
    }
    if (needsRefresh(s.tokens.expiresAt) && !(await refreshed(sreq).catch(() => false))) {
      await destroySession(sreq.session!).catch(() => {});
      return rejected('session_refresh_failed');
    }
    const idToken = sreq.session?.tokens?.idToken;
    if (!idToken) return absent;
    const outcome = await deps.tokens.authenticateToken(idToken);
    if (outcome.kind !== 'authenticated') return outcome;
    const { identity } = outcome;
    // (The spread leaves the claims behind: they are not enumerable.)
    return { kind: 'authenticated', identity: identity.claims ? withClaims({ ...identity, authMethod: 'session' }, identity.claims) : { ...identity, authMethod: 'session' } };
  };
}
