/**
 * jose's verification errors, translated into our rejection reasons.
 */
import { errors } from 'jose';
import type { RejectReason } from '../../request/identity.js';

/**
 * The reason a jose error stands for, or `undefined` for an error jose did not
 * raise about the token (a bug, or something the caller should log).
 */
export function rejectReason(err: unknown): RejectReason | undefined {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return 'bad_audience';
    if (err.claim === 'iss') return 'unknown_issuer';
    if (err.reason === 'missing') return 'missing_claim';
    if (err.claim === 'nbf' && err.reason === 'check_failed') return 'not_yet_valid';
    return 'invalid_claim';
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'disallowed_algorithm';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  // No key for the token, or the provider published keys we cannot use for it.
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSInvalid || err instanceof errors.JWKInvalid) {
    return 'unknown_key';
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JOSENotSupported) {
    return 'malformed_token';
  }
  return undefined;
}
