/**
 * Token verification for one `jwt[]` issuer: discovery and keys loaded in the
 * background, then kube-apiserver's checks on every token.
 */
import type { Agent } from 'undici';
import type { JwtAuthenticatorConfig } from '../../config/schema.js';
import type { Logger } from '../../observe/logger.js';
import { rejected, type AuthOutcome, type RejectReason } from '../../request/identity.js';
import { ALLOWED_ALGORITHMS, providerAgent, retryUntilDone } from '../idp.js';
import { compileClaimRules, mapClaims } from './claims.js';
import { parseCompact, untrustedIssuer } from './compact.js';
import { discover } from './discovery.js';
import { decodeStandardClaims } from './go-json.js';
import { distributedSource, fetchClaimJwt } from './distributed-claims.js';
import { JwksCache } from './jwks.js';
import { verifySignature } from './signature.js';

/** Leeway on `nbf` (go-oidc's). `exp` has none. */
const NBF_LEEWAY_MS = 60_000;
/** The most other issuers distributed claims may come from. */
const MAX_CLAIM_ISSUERS = 16;
/** go-oidc accepts this issuer's tokens with iss `accounts.google.com` too. */
const GOOGLE = 'https://accounts.google.com';

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
  readonly #started: Promise<void>;
  #agent: Agent | undefined;
  #jwks: JwksCache | undefined;
  /** Other issuers whose JWTs distributed-claims endpoints answer with. */
  readonly #claimIssuers = new Map<string, { jwks?: JwksCache }>();

  /** Starts discovery at once; it is retried with backoff until it works or {@link close} is called. */
  constructor(config: JwtAuthenticatorConfig, logger: Logger) {
    this.#config = config;
    // Compiled now (a cache hit after the config schema), never on a request.
    compileClaimRules(config);
    this.#logger = logger.child({ issuer: config.issuer.url });
    this.#started = this.#load();
  }

  /** True once discovery and a first key fetch have succeeded. */
  ready(): boolean {
    return this.#jwks !== undefined;
  }

  /**
   * Verifies a token whose unverified `iss` named this issuer, with go-oidc's
   * checks in go-oidc's order (verify.go Verify, then kube's audience check
   * and AuthenticateToken): algorithm, signature, typed standard claims,
   * issuer, audience, expiry, not-before, then the claim mappings. Never throws.
   */
  async verify(token: string): Promise<Verification> {
    const checked = await this.#check(token, this.#jwks, this.#config.issuer.url);
    if (typeof checked === 'string') return { outcome: rejected(checked) };
    let { claims } = checked;

    // oidc.go claimResolver: only a groups claim is resolved, and only when the token lacks it.
    const groupsClaim = this.#config.claimMappings.groups?.claim;
    if (groupsClaim) {
      const source = distributedSource(claims, groupsClaim);
      if (source === 'invalid') return { outcome: rejected('invalid_claim') };
      if (source !== 'none') {
        const value = await this.#resolve(source, groupsClaim);
        if (value === undefined) return { outcome: rejected('invalid_claim') };
        claims = { ...claims, [groupsClaim]: value.claim };
      }
    }

    const outcome = mapClaims(claims, this.#config);
    return outcome.kind === 'authenticated' ? { outcome, expiresAt: checked.expiresAt } : { outcome };
  }

  /**
   * go-oidc's checks in go-oidc's order (verify.go Verify, then kube's
   * audience check): algorithm, signature, typed standard claims, issuer,
   * audience, expiry, not-before. The claims, or why the token is refused.
   */
  async #check(token: string, jwks: JwksCache | undefined, url: string): Promise<{ claims: Record<string, unknown>; expiresAt: number } | RejectReason> {
    if (!jwks) return 'issuer_not_ready';

    const jws = parseCompact(token);
    if (!jws) return 'malformed_token';
    // Refused before any key lookup, so that `none` or HMAC never costs a JWKS refetch.
    if (!ALLOWED_ALGORITHMS.includes(jws.alg)) return 'disallowed_algorithm';
    const keys = await jwks.candidates(jws.kid);
    if (keys.length === 0) return 'unknown_key';
    if (!keys.some(({ key }) => verifySignature(jws.alg, key, jws.signingInput, jws.signature))) return 'bad_signature';

    let payload: unknown;
    try {
      payload = JSON.parse(jws.payload.toString('utf8'));
    } catch {
      return 'malformed_token';
    }
    // json.Unmarshal of null into a struct or map leaves it empty: no exp, so expired.
    if (payload === null) return 'expired';
    if (typeof payload !== 'object' || Array.isArray(payload)) return 'malformed_token';
    const claims = payload as Record<string, unknown>;
    const standard = decodeStandardClaims(claims);
    if (!standard) return 'invalid_claim';
    const { audiences } = this.#config.issuer;
    if (standard.iss !== url && !(url === GOOGLE && standard.iss === 'accounts.google.com')) return 'unknown_issuer';
    if (!standard.aud.some((a) => audiences.includes(a))) return 'bad_audience';
    const now = Date.now();
    const expiresAt = standard.exp * 1000;
    // go-oidc: expired when exp is before now (a token is good through its exp second); nbf has a minute's leeway.
    if (expiresAt < now) return 'expired';
    if (standard.nbf !== undefined && now + NBF_LEEWAY_MS < standard.nbf * 1000) return 'not_yet_valid';
    return { claims, expiresAt };
  }

  /**
   * oidc.go resolve: the endpoint's JWT, verified by the issuer it names
   * (claimResolver.Verifier: this issuer's keys, or another's discovered on
   * first use over this entry's connection) with this entry's audiences, must
   * carry the claim; its value is returned. Any failure is undefined: kube
   * refuses the token then. Nothing is cached beyond the token cache's answer,
   * as in kube (resolve: "TODO: cache resolved claims").
   */
  async #resolve(source: { endpoint: string; accessToken: string }, claim: string): Promise<{ claim: unknown } | undefined> {
    if (!this.#agent) return undefined;
    let jwt: string;
    try {
      jwt = await fetchClaimJwt(source, this.#agent, this.#abort.signal);
    } catch (err) {
      this.#logger.debug({ err: err instanceof Error ? err.message : String(err) }, 'distributed claim endpoint failed; token refused');
      return undefined;
    }
    const iss = untrustedIssuer(jwt);
    if (iss === undefined) return undefined;
    // Never a default: another issuer's name must not be checked with this issuer's keys.
    const keys = iss === this.#config.issuer.url ? this.#jwks : this.#claimIssuerKeys(iss);
    const checked = await this.#check(jwt, keys, iss);
    if (typeof checked === 'string' || !Object.hasOwn(checked.claims, claim)) return undefined;
    return { claim: checked.claims[claim] };
  }

  /**
   * The keys of another issuer that signs distributed claims, as kube's
   * asyncIDTokenVerifier: discovered in the background from the first token
   * that needs it, retried until it works; undefined (the token refused) until then.
   */
  #claimIssuerKeys(iss: string): JwksCache | undefined {
    const known = this.#claimIssuers.get(iss);
    if (known) return known.jwks;
    // kube keeps one per issuer without bound; only tokens this issuer signed can name one, still a bound is cheap.
    if (this.#claimIssuers.size >= MAX_CLAIM_ISSUERS || !this.#agent || !URL.canParse(iss)) return undefined;
    const entry: { jwks?: JwksCache } = {};
    this.#claimIssuers.set(iss, entry);
    const agent = this.#agent;
    const { signal } = this.#abort;
    const { discoveryURL: _ownDiscovery, ...issuer } = this.#config.issuer;
    const logger = this.#logger.child({ claimIssuer: iss });
    void retryUntilDone(
      async () => {
        const { jwksURI } = await discover({ ...issuer, url: iss }, agent, signal);
        const jwks = new JwksCache({ url: jwksURI, dispatcher: agent, refetchIntervalMs: this.#config.jwksRefetchInterval, logger, signal });
        await jwks.load();
        entry.jwks = jwks;
      },
      { signal, onFailure: (failure) => logger.warn(failure, 'distributed claims issuer not ready: discovery or key fetch failed; its claims are refused until it works') },
    );
    return undefined;
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
