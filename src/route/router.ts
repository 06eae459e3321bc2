/**
 * Which route a request belongs to: by host first (an exact name beats a
 * `*.` wildcard beats a route for every host), then by the longest path
 * prefix on whole segments, as nginx picks a server and then a location.
 * No match is no route: the caller answers 404, never some default.
 */

export interface RouteMatch {
  /** Lower-case host name, or `*.example.com`; undefined: every host. */
  readonly host?: string;
  /** `/`, or a prefix without a trailing slash matched on whole segments. */
  readonly pathPrefix: string;
}

/** Whether a route's host pattern (exact, or `*.` for one more label) names `host`. */
export function hostMatches(pattern: string, host: string | undefined): boolean {
  return hostRank(pattern, host) >= 2;
}

function hostRank(pattern: string | undefined, host: string | undefined): number {
  if (pattern === undefined) return 1;
  if (host === undefined) return 0;
  if (!pattern.startsWith('*.')) return pattern === host ? 3 : 0;
  // One more label, as a TLS wildcard: *.example.com is a.example.com, not a.b.example.com.
  const suffix = pattern.slice(1);
  return host.endsWith(suffix) && !host.slice(0, -suffix.length).includes('.') && host.length > suffix.length ? 2 : 0;
}

function pathMatches(prefix: string, path: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
}

/** A matcher over `routes`, in their order for equal matches (the loader refuses exact duplicates). */
export function createRouter<T extends RouteMatch>(routes: readonly T[]): (host: string | undefined, path: string) => T | undefined {
  const normal = routes.map((route) => ({ route, prefix: route.pathPrefix === '/' ? '/' : route.pathPrefix.replace(/\/$/, '') }));
  return (host, path) => {
    let best: T | undefined;
    let bestRank = 0;
    let bestLength = -1;
    for (const { route, prefix } of normal) {
      const rank = hostRank(route.host, host);
      if (rank === 0 || !pathMatches(prefix, path)) continue;
      if (rank > bestRank || (rank === bestRank && prefix.length > bestLength)) {
        [best, bestRank, bestLength] = [route, rank, prefix.length];
      }
    }
    return best;
  };
}

/**
 * A path routes may be chosen by: one whose meaning cannot change behind us.
 * An application that resolves `/public/../admin` to `/admin`, or decodes
 * `%2F`, would serve a route other than the one whose rule was applied; so a
 * dot segment (also as `%2e`), an encoded slash or backslash, or a backslash
 * is refused rather than routed.
 */
export function isRoutablePath(path: string): boolean {
  // Encoded slashes and backslashes, backslashes, empty segments (`//` is merged by nginx,
  // Spring, Jetty) and path parameters (`;`, which Tomcat and Spring strip).
  if (/%2f|%5c|\\|\/\/|;/i.test(path)) return false;
  const decoded = path.replace(/%2e/gi, '.');
  return !decoded.split('/').some((segment) => segment === '.' || segment === '..');
}

/**
 * The path routes are chosen by: percent-encoded unreserved characters
 * decoded (`/%61dmin` is `/admin` to Go, WSGI, Tomcat and nginx), the rest
 * as sent. Applications that decode twice or ignore case are not matched
 * here: docs/security.md.
 */
export function routingPath(path: string): string {
  return path.replace(/%([0-9a-f]{2})/gi, (escape: string, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(ch) ? ch : escape;
  });
}
