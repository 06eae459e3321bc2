/**
 * Bearer JWTs from the configured issuers, with kube-apiserver's semantics
 * (structured AuthenticationConfiguration, `jwt[]`).
 */
import type { JwtAuthenticatorConfig } from '../../config/schema.js';
import type { Logger } from '../../observe/logger.js';
import { rejected, type AuthOutcome } from '../../request/identity.js';
import type { TokenAuthenticator } from '../authenticator.js';
import { createTokenCache, type Verified } from '../token-cache.js';
import { untrustedIssuer } from './compact.js';
import { IssuerAuthenticator } from './issuer-authenticator.js';

/** Logging and caching for {@link createJwtAuthenticator}. */
export interface JwtAuthenticatorOptions {
  readonly logger: Logger;
  /** How long a successful verification is remembered (never past the token's `exp`); 0 turns caching off. */
  readonly cacheTTLms: number;
  /** The most verifications remembered; 0 turns caching off. */
  readonly cacheMaxEntries: number;
}

/**
 * A token authenticator over every `jwt[]` entry. A token picks its issuer by
 * its unverified `iss` (its key matched case-insensitively, as Go's JSON decoder does), compared with each `issuer.url` as an exact string (a
 * trailing slash matters); then that issuer verifies it. Outcomes:
 * `malformed_token` (not a JWT), `unknown_issuer` (no entry for its `iss`),
 * `issuer_not_ready` (discovery or keys not loaded yet), or the issuer's verdict.
 * Each issuer starts loading at once; {@link TokenAuthenticator.ready} is true
 * when all of them have.
 *
 * @example
 * const jwt = createJwtAuthenticator(config.authentication.jwt, { logger, cacheTTLms: 10_000, cacheMaxEntries: 10_000 });
 * const outcome = await jwt.authenticateToken(token);
 */
export function createJwtAuthenticator(configs: readonly JwtAuthenticatorConfig[], opts: JwtAuthenticatorOptions): TokenAuthenticator {
  const issuers = new Map(configs.map((config) => [config.issuer.url, new IssuerAuthenticator(config, opts.logger)]));

  const verify = async (token: string): Promise<Verified<AuthOutcome>> => {
    // oidc.go untrustedIssuer: iss matched case-insensitively, as Go decodes it.
    const iss = untrustedIssuer(token);
    if (iss === undefined) return { value: rejected('malformed_token') };
    const issuer = issuers.get(iss);
    if (!issuer) return { value: rejected('unknown_issuer') };
    const { outcome, expiresAt } = await issuer.verify(token);
    return { value: outcome, cacheUntil: expiresAt };
  };

  return {
    authenticateToken: createTokenCache(verify, { ttlMs: opts.cacheTTLms, maxEntries: opts.cacheMaxEntries }),
    ready: () => [...issuers.values()].every((issuer) => issuer.ready()),
    close: async () => {
      await Promise.all([...issuers.values()].map((issuer) => issuer.close()));
    },
  };
}
