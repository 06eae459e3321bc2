/**
 * Who the caller is, in the shape of Kubernetes' user.Info, plus how we know.
 * Every authenticator produces one of these or a typed rejection; nothing else
 * crosses the boundary between authentication and forwarding.
 */
export type AuthMethod = 'jwt' | 'session' | 'x509' | 'token';

export interface Identity {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
  readonly authMethod: AuthMethod;
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
  /** Session cookie: past its absolute lifetime. */
  | 'session_expired'
  /** Session cookie: the tokens could not be refreshed; the session ended. */
  | 'session_refresh_failed'
  /** Session cookie: sent more than once (a sibling subdomain may have planted one); neither is used. */
  | 'ambiguous_session_cookie';

export type AuthOutcome =
  | { readonly kind: 'authenticated'; readonly identity: Identity }
  | { readonly kind: 'rejected'; readonly reason: RejectReason }
  /** The request carries no credential this authenticator understands. */
  | { readonly kind: 'absent' }
  /** The credential cannot be checked now (the session store is down): fail closed with 503. */
  | { readonly kind: 'unavailable' };

export const absent: AuthOutcome = Object.freeze({ kind: 'absent' });
export const rejected = (reason: RejectReason): AuthOutcome => ({ kind: 'rejected', reason });
export const authenticated = (identity: Identity): AuthOutcome => ({ kind: 'authenticated', identity });
