/**
 * Token verification for one `jwt[]` issuer: discovery and keys loaded in the
 * background, then kube-apiserver's checks on every token.
 */
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import type { Agent } from 'undici';
import type { JwtAuthenticatorConfig } from '../../config/schema.js';
import type { Logger } from '../../observe/logger.js';
import { rejected, type AuthOutcome } from '../../request/identity.js';
import { ALLOWED_ALGORITHMS, providerAgent, retryUntilDone } from '../idp.js';
import { mapClaims } from './claims.js';
import { discover } from './discovery.js';
import { JwksCache } from './jwks.js';
import { rejectReason } from './reasons.js';

/** Leeway on `nbf` (go-oidc's). `exp` has none. */
const NBF_LEEWAY_SECONDS = 60;

/** The outcome for one token, and until when a success may be cached. */
export interface Verification {
  readonly outcome: AuthOutcome;
  /** The token's `exp` in epoch ms; set on success only. */
  readonly expiresAt?: number;
}

/** One issuer: discovery and keys loaded in the background, then verification. */
export class IssuerAuthenticator {
  readonly #config: JwtAuthenticatorConfig;
  readonly #logger: Logger;
  readonly #abort = new AbortController();
  readonly #options: JWTVerifyOptions;
  readonly #started: Promise<void>;
  #agent: Agent | undefined;
  #jwks: JwksCache | undefined;

  /** Starts discovery at once; it is retried with backoff until it works or {@link close} is called. */
  constructor(config: JwtAuthenticatorConfig, logger: Logger) {
    this.#config = config;
    this.#logger = logger.child({ issuer: config.issuer.url });
    this.#options = {
      issuer: config.issuer.url,
      audience: config.issuer.audiences,
      algorithms: [...ALLOWED_ALGORITHMS],
      requiredClaims: ['exp'],
      // jose applies one tolerance to nbf and exp alike: verify with nbf's
      // leeway, then hold exp to none in verify().
      clockTolerance: NBF_LEEWAY_SECONDS,
    };
    this.#started = this.#load();
  }

  /** True once discovery and a first key fetch have succeeded. */
  ready(): boolean {
    return this.#jwks !== undefined;
  }

  /** Verifies a token whose unverified `iss` named this issuer. Never throws. */
  async verify(token: string): Promise<Verification> {
    const jwks = this.#jwks;
    if (!jwks) return { outcome: rejected('issuer_not_ready') };

    // Refused before any key lookup, so that `none` or HMAC never costs a JWKS refetch.
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return { outcome: rejected('malformed_token') };
    }
    if (typeof alg !== 'string' || !ALLOWED_ALGORITHMS.includes(alg)) return { outcome: rejected('disallowed_algorithm') };

    let payload: JWTPayload;
    try {
      ({ payload } = await verifyWithAnyKey(token, jwks.getKey, this.#options));
    } catch (err) {
      const reason = rejectReason(err);
      if (!reason) this.#logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'unexpected error verifying a token');
      return { outcome: rejected(reason ?? 'malformed_token') };
    }
    // A number: requiredClaims made jose check that it is present and numeric.
    const expiresAt = (payload.exp as number) * 1000;
    if (Date.now() >= expiresAt) return { outcome: rejected('expired') };

    const outcome = mapClaims(payload, this.#config);
    return outcome.kind === 'authenticated' ? { outcome, expiresAt } : { outcome };
  }

  /** Stops retrying and fetching, and closes the issuer's connections. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#started;
    await this.#agent?.close();
  }

  async #load(): Promise<void> {
    const { signal } = this.#abort;
    const { issuer } = this.#config;
    // kube retries discovery every 10 s; retryUntilDone starts faster and backs off to that.
    await retryUntilDone(
      async (attempt) => {
        this.#agent ??= await providerAgent({ pem: issuer.certificateAuthority, file: issuer.certificateAuthorityFile });
        const { jwksURI } = await discover(issuer, this.#agent, signal);
        const jwks = new JwksCache({ url: jwksURI, dispatcher: this.#agent, refetchIntervalMs: this.#config.jwksRefetchInterval, logger: this.#logger, signal });
        await jwks.load();
        this.#jwks = jwks;
        this.#logger.info({ jwksURI, attempt }, 'JWT issuer ready');
      },
      {
        signal,
        onFailure: (failure) =>
          this.#logger.warn(failure, 'JWT issuer not ready yet: discovery or key fetch failed; tokens from it are refused until it works'),
      },
    );
  }
}

/**
 * jwtVerify, except that a token without `kid` that fits several of the
 * issuer's keys is tried against each (as go-oidc does) instead of refused.
 */
async function verifyWithAnyKey(token: string, getKey: JWTVerifyGetKey, options: JWTVerifyOptions) {
  try {
    return await jwtVerify(token, getKey, options);
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    for await (const key of err) {
      try {
        return await jwtVerify(token, key, options);
      } catch (keyErr) {
        if (!(keyErr instanceof errors.JWSSignatureVerificationFailed)) throw keyErr;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}
