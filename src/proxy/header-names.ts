/**
 * A header name as any server downstream may read it: lower case, `_` as `-`.
 * WSGI and CGI (Django, Flask, PHP) turn both `X-Remote-User` and
 * `X_Remote_User` into HTTP_X_REMOTE_USER, so every name the proxy protects is
 * compared folded (oauth2-proxy CVE-2025-64484).
 */
export function foldName(name: string): string {
  const lower = name.toLowerCase();
  return lower.includes('_') ? lower.replaceAll('_', '-') : lower;
}
