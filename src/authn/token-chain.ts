/**
 * Every bearer-token authenticator as one, in the order kube-apiserver's
 * union authenticator would reach the same answer:
 *
 * 1. a JWT whose `iss` names a configured issuer goes to that issuer alone
 *    (its verdict is final: a bad signature is not rescued by a webhook);
 * 2. otherwise static tokens, the webhook, TokenReview, in that order; as in
 *    kube's union (k8s.io/apiserver pkg/authentication/request/union), a
 *    refusal does not stop the next, and the first success decides;
 * 3. otherwise, with passthrough on, the token goes to kube-apiserver unread.
 *
 * When nothing claims the token the first refusal is the reason (the JWT
 * issuer's own when no other authenticator is configured).
 */
import { passthrough, rejected, type AuthOutcome } from '../request/identity.js';
import type { TokenAuthenticator } from './authenticator.js';
import { untrustedIssuer } from './jwt/compact.js';

export interface TokenChainOptions {
  /** JWT issuers (authentication.jwt or configFile): asked first. */
  readonly jwt: TokenAuthenticator;
  /** Static tokens, the webhook, TokenReview: those configured, in that order. */
  readonly others: readonly TokenAuthenticator[];
  /** Forward a token nothing claims, for kube-apiserver to decide. */
  readonly passthrough: boolean;
}

/**
 * True when the token names an issuer at all, read exactly as the JWT authenticator
 * picks its issuer (Go's reading: invalid UTF-8 is U+FFFD, keys fold case): only then
 * can its verdict be about an issuer of ours. A stricter reader here (jose's) let one
 * invalid byte take a forged token of our issuer past its issuer's refusal.
 */
const namesAnIssuer = (token: string): boolean => untrustedIssuer(token) !== undefined;

export function tokenAuthenticatorChain({ jwt, others, passthrough: passOn }: TokenChainOptions): TokenAuthenticator {
  const all = [jwt, ...others];
  return {
    async authenticateToken(token) {
      const fromJwt = await jwt.authenticateToken(token);
      const claimedByJwt = !(fromJwt.kind === 'rejected' && (fromJwt.reason === 'unknown_issuer' || !namesAnIssuer(token)));
      if (claimedByJwt) return fromJwt;
      let refusal: AuthOutcome | undefined;
      for (const authenticator of others) {
        const outcome = await authenticator.authenticateToken(token);
        if (outcome.kind === 'authenticated') return outcome;
        if (outcome.kind !== 'absent') refusal ??= outcome;
      }
      if (passOn) return passthrough;
      return refusal ?? (others.length > 0 ? rejected('unknown_token') : fromJwt);
    },
    ready: () => all.every((a) => a.ready()),
    close: async () => {
      await Promise.all(all.map((a) => a.close()));
    },
  };
}
