/**
 * Who the caller is, in the shape of Kubernetes' user.Info, plus how we know.
 * Every authenticator produces one of these or a typed rejection; nothing else
 * crosses the boundary between authentication and forwarding.
 */
/**
 * Which authenticator decided, as the audit line's `auth=` names it:
 * - `jwt`: a bearer JWT from a configured issuer;
 * - `session`: the browser session cookie;
 * - `x509`: a client certificate signed by listen.tls.clientCAFile;
 * - `static_token`: a token from authentication.staticTokenFile (kube's --token-auth-file);
 * - `webhook`: a token a TokenReview webhook vouched for (kube's --authentication-token-webhook-config-file);
 * - `token_review`: a token kube-apiserver's own TokenReview API vouched for.
 * (A token passed through to kube-apiserver unread is an AuthOutcome of its own, `passthrough`.)
 */
export type AuthMethod = 'jwt' | 'session' | 'x509' | 'static_token' | 'webhook' | 'token_review';

export interface Identity {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
  readonly authMethod: AuthMethod;
  /**
   * The verified token's claims (JWT, and the session's id_token), for route
   * rules and application headers (email, preferred_username). Not enumerable:
   * no log line, audit record or comparison of an Identity carries them.
   */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/** `identity` with its verified claims attached (not enumerable; see Identity.claims). */
export function withClaims<T extends Identity>(identity: T, claims: Readonly<Record<string, unknown>>): T {
  Object.defineProperty(identity, 'claims', { value: claims, enumerable: false });
  return identity;
}

/**
 * Why a credential was refused. These go to the audit log and the metrics
 * (never to the client in detail, never with the token itself).
 */
export type RejectReason =
  | 'no_credentials'
  | 'malformed_token'
  | 'unknown_issuer'
  | 'issuer_not_ready'
  | 'disallowed_algorithm'
  | 'unknown_key'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'bad_audience'
  | 'missing_claim'
  | 'invalid_claim'
  | 'email_not_verified'
  | 'claim_rule_failed'
  /** A CEL claim mapping (username, groups, uid, extra) failed at run time or gave the wrong type. */
  | 'claim_mapping_failed'
  /** A userValidationRules expression was false (or failed) for the mapped user. */
  | 'user_rule_failed'
  /** A bearer token no configured authenticator claims (not a JWT of a configured issuer, and nothing else knows it). */
  | 'unknown_token'
  /** A client certificate was presented that does not verify against listen.tls.clientCAFile (or is expired, or not for client auth). */
  | 'bad_client_certificate'
  /** A verified client certificate names a `system:` group while authentication.x509.refuseSystemGroups is on. */
  | 'client_certificate_system_group'
  /** The token webhook or TokenReview API could not be asked (down, timed out, bad answer): fail closed. */
  | 'token_review_unavailable'
  /** The token webhook or TokenReview API answered that the token is not authenticated. */
  | 'token_review_denied'
  /** Session cookie: past its absolute lifetime. */
  | 'session_expired'
  /** Session cookie: the tokens could not be refreshed; the session ended. */
  | 'session_refresh_failed'
  /** Session cookie: sent more than once (a sibling subdomain may have planted one); neither is used. */
  | 'ambiguous_session_cookie'
  /** A session made on one host (a foreign gateway host's own login) sent to another, or a domain session sent to a foreign host. */
  | 'session_for_another_host';

export type AuthOutcome =
  | { readonly kind: 'authenticated'; readonly identity: Identity }
  | { readonly kind: 'rejected'; readonly reason: RejectReason }
  /** The request carries no credential this authenticator understands. */
  | { readonly kind: 'absent' }
  /** The credential cannot be checked now (the session store is down): fail closed with 503. */
  | { readonly kind: 'unavailable' }
  /**
   * A bearer token no authenticator of ours claims, forwarded unread for
   * kube-apiserver to decide (authentication.passthrough): no identity headers,
   * the client's own Authorization, and not the proxy's client certificate.
   */
  | { readonly kind: 'passthrough' };

export const absent: AuthOutcome = Object.freeze({ kind: 'absent' });
export const rejected = (reason: RejectReason): AuthOutcome => ({ kind: 'rejected', reason });
export const passthrough: AuthOutcome = Object.freeze({ kind: 'passthrough' });
export const authenticated = (identity: Identity): AuthOutcome => ({ kind: 'authenticated', identity });
