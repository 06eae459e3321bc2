/**
 * OpenID Connect Back-Channel Logout 1.0: the provider POSTs a signed logout
 * token naming a session (sid) or a subject (sub); the matching sessions end.
 */
import { jwtVerify, type JWTVerifyGetKey } from 'jose';
import { ALLOWED_ALGORITHMS } from '../authn/idp.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export interface LogoutTokenVerifier {
  /** The session or subject to log out, or undefined when the token is not valid. Never throws. */
  verify(token: string): Promise<{ sid?: string; sub?: string } | undefined>;
}

export function createLogoutTokenVerifier(issuer: string, clientID: string, getKey: () => JWTVerifyGetKey | undefined): LogoutTokenVerifier {
  return {
    async verify(token) {
      const keys = getKey();
      if (!keys) return undefined;
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer,
          audience: clientID,
          algorithms: [...ALLOWED_ALGORITHMS],
          requiredClaims: ['iat', 'jti'],
          maxTokenAge: '5m',
        });
        const events = payload.events as Record<string, unknown> | undefined;
        // A logout token must carry the event, and must not be an id_token in disguise (no nonce).
        if (!events || typeof events !== 'object' || !(EVENT in events) || 'nonce' in payload) return undefined;
        const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
        const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
        if (!sid && !sub) return undefined;
        return { ...(sid ? { sid } : {}), ...(sub ? { sub } : {}) };
      } catch {
        return undefined;
      }
    },
  };
}
