/**
 * The bearer token in an `Authorization` header (RFC 6750 section 2.1).
 */

/** `Bearer`, one space, one b64token; the scheme name is case-insensitive. */
const BEARER = /^bearer ([A-Za-z0-9\-._~+/]+=*)$/i;

/**
 * The token from an `Authorization` header.
 *
 * @returns the token; `undefined` when there is no header or it uses another
 *   scheme (not a credential we understand); `null` when it says `Bearer` but
 *   what follows is not one well-formed token (nothing, extra spaces, more than
 *   one word, characters outside b64token), which is a bad credential rather
 *   than a missing one.
 *
 * @example
 * bearerToken('bearer eyJhbGciOi...') // 'eyJhbGciOi...'
 * bearerToken('Basic dXNlcjpwdw==')   // undefined
 * bearerToken('Bearer  two  spaces')  // null
 */
export function bearerToken(authorization: string | undefined): string | undefined | null {
  if (!authorization) return undefined;
  const scheme = authorization.split(/[ \t]/, 1)[0] ?? '';
  if (scheme.toLowerCase() !== 'bearer') return undefined;
  return BEARER.exec(authorization)?.[1] ?? null;
}
