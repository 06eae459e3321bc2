/**
 * JWS signature checks as go-jose v2 makes them for go-oidc (kube-apiserver
 * 1.37): the token's `alg` picks the hash and padding, the key only has to be
 * of the right type. A JWK's own `alg`, `use` and `key_ops` are not consulted
 * (go-jose's newVerifier takes JSONWebKey.Key alone), so a key published with
 * alg RS256 verifies a PS256 signature, as in kube.
 */
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';

/** One usable key of an issuer's set. */
export interface VerificationKey {
  readonly kid: string | undefined;
  readonly key: KeyObject;
}

/** The keys of a JWKS document that Node can use to verify; others are left out. */
export function keysOf(set: unknown): VerificationKey[] {
  if (typeof set !== 'object' || set === null || !Array.isArray((set as { keys?: unknown }).keys)) throw new Error('not a JSON Web Key Set');
  const keys: VerificationKey[] = [];
  for (const jwk of (set as { keys: unknown[] }).keys) {
    if (typeof jwk !== 'object' || jwk === null) continue;
    const { kty, kid } = jwk as { kty?: unknown; kid?: unknown };
    if (kty !== 'RSA' && kty !== 'EC') continue;
    try {
      // Public parts only: a private member (d, p, q…) in a published key is ignored, not trusted.
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...pub } = jwk as Record<string, unknown>;
      keys.push({ kid: typeof kid === 'string' ? kid : undefined, key: createPublicKey({ key: pub as never, format: 'jwk' }) });
    } catch {
      // Not a key Node can read (a bad modulus, an unknown curve): go-jose would not verify with it either.
    }
  }
  return keys;
}

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };
/** go-jose's ECDSA signature sizes by alg (r and s, each this many bytes). */
const EC_SIZE: Record<string, number> = { ES256: 32, ES384: 48, ES512: 66 };

/** Whether `signature` over `data` verifies under `alg` (RS*, PS*, ES*) with `key`. */
export function verifySignature(alg: string, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  const hash = HASH[alg.slice(2)];
  if (!hash) return false;
  try {
    if (alg.startsWith('RS') && key.asymmetricKeyType === 'rsa') {
      return verify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    }
    if (alg.startsWith('PS') && key.asymmetricKeyType === 'rsa') {
      // rsa.VerifyPSS with nil options: the salt length is read from the signature.
      return verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature);
    }
    if (alg.startsWith('ES') && key.asymmetricKeyType === 'ec') {
      if (signature.length !== 2 * (EC_SIZE[alg] ?? 0)) return false;
      return verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    }
  } catch {
    return false;
  }
  return false;
}
