/**
 * Reading a compact JWT the way kube-apiserver's libraries read it: the
 * unverified issuer that picks the `jwt[]` entry (oidc.go untrustedIssuer),
 * and the parts go-jose v2 verifies (ParseSigned).
 */
import { decodeField, FAIL, goStringField } from './go-json.js';

/** Go's base64.RawURLEncoding: URL alphabet, no padding; \r and \n are skipped; a length of 4n+1 is corrupt. */
function rawUrlDecode(text: string): Buffer | undefined {
  const clean = text.replace(/[\r\n]/g, '');
  if (!/^[A-Za-z0-9_-]*$/.test(clean) || clean.length % 4 === 1) return undefined;
  return Buffer.from(clean, 'base64url');
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The token's `iss` before any verification (oidc.go untrustedIssuer): three
 * dot-separated parts, a payload whose `iss` keys (matched case-insensitively,
 * each decoded in turn, as Go's decoder does) are strings or null; `accounts.google.com` reads as
 * `https://accounts.google.com`. Undefined when kube would find no issuer.
 */
export function untrustedIssuer(token: string): string | undefined {
  if (token.trim().startsWith('{')) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const payload = rawUrlDecode(parts[1] ?? '');
  const claims = payload && parseJson(payload);
  if (claims === null) return '';
  if (!isObject(claims)) return undefined;
  const iss = decodeField(claims, 'iss', '', goStringField);
  if (iss === FAIL) return undefined;
  return iss === 'accounts.google.com' ? 'https://accounts.google.com' : iss;
}

/** A compact JWS taken apart. */
export interface CompactJws {
  readonly alg: string;
  readonly kid: string | undefined;
  /** `header.payload` re-encoded from the decoded parts, as go-jose computes what the signature covers. */
  readonly signingInput: Buffer;
  readonly signature: Buffer;
  /** The decoded payload, not yet parsed. */
  readonly payload: Buffer;
}

/** go-jose's base64URLDecode: trailing `=` tolerated, then RawURLEncoding. */
const joseDecode = (text: string) => rawUrlDecode(text.replace(/=+$/, ''));

/**
 * The parts of a compact JWS, or undefined when go-oidc or go-jose would call
 * it malformed: more than two dots, a part that is not base64url, a header
 * that is not a JSON object with a string `alg` (and a string `kid`, if any).
 */
export function parseCompact(token: string): CompactJws | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [h = '', p = '', s = ''] = parts;
  const headerBytes = joseDecode(h);
  const payload = joseDecode(p);
  const signature = joseDecode(s);
  if (!headerBytes || !payload || !signature) return undefined;
  const header = parseJson(headerBytes);
  if (!isObject(header) || typeof header.alg !== 'string') return undefined;
  if (header.kid !== undefined && header.kid !== null && typeof header.kid !== 'string') return undefined;
  const kid = typeof header.kid === 'string' ? header.kid : undefined;
  return { alg: header.alg, kid, signingInput: Buffer.from(`${headerBytes.toString('base64url')}.${payload.toString('base64url')}`, 'ascii'), signature, payload };
}
