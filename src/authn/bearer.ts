/**
 * The bearer token in an `Authorization` header, read as kube-apiserver reads
 * it (k8s.io/apiserver pkg/authentication/request/bearertoken/bearertoken.go):
 * trim white space, split on single spaces into at most three parts, the
 * first must be `bearer` in any case, the second is the token whatever its
 * characters, and anything after the next space is ignored.
 */

/** Go's strings.TrimSpace over the characters a Node header value can hold (latin1): unicode.IsSpace. */
const GO_SPACE = /^[\t\n\v\f\r \x85\xA0]+|[\t\n\v\f\r \x85\xA0]+$/g;

/**
 * The token from an `Authorization` header.
 *
 * @returns the token; `undefined` when kube would find no bearer credential in
 *   the header: none, another scheme, `Bearer` alone, or an empty token (two
 *   spaces after `Bearer`). Never `null`: kube has no "malformed bearer
 *   header"; a token it cannot read is refused by the token authenticator.
 *
 * @example
 * bearerToken('bearer eyJhbGciOi...')        // 'eyJhbGciOi...'
 * bearerToken('Bearer eyJhbGciOi... extra')  // 'eyJhbGciOi...' (text after the token is ignored)
 * bearerToken('Basic dXNlcjpwdw==')          // undefined
 */
export function bearerToken(authorization: string | undefined): string | undefined | null {
  const auth = authorization?.replace(GO_SPACE, '');
  if (!auth) return undefined;
  const [scheme, token = ''] = auth.split(' ', 2);
  if (scheme?.toLowerCase() !== 'bearer' || token === '') return undefined;
  return token;
}
