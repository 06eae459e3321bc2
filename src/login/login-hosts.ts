/**
 * Where a browser on one of the gateway's hosts signs in. The login-state
 * cookie is `__Host-` (this host only), so a login must start and finish on
 * one host; the session cookie it ends with is for `cookie.domain`, or for the
 * login's host alone:
 *
 * - the login host (redirectURL's): signs in here, as always;
 * - a route host under `cookie.domain`: sent to the login host with `rd` back
 *   to itself, so one login covers every such host;
 * - a route host outside it (a foreign host): its own login, with its own
 *   callback (`https://<host><pathPrefix>/callback`, which must be registered
 *   at the provider) and a session cookie for that host only, never one for
 *   a domain it is not in.
 */
import { hostOf } from '../request/client.js';
import { hostMatches } from '../route/router.js';

export interface LoginHosts {
  /** Where an anonymous browser on `authority` asking for `target` (path and query) goes to sign in. */
  readonly startURL: (authority: string | undefined, target: string) => string;
  /** The callback URL a login started on `authority` gives the provider. */
  readonly redirectURL: (authority: string | undefined) => string;
  /** True when a session made on `authority` gets a cookie for that host alone. */
  readonly hostOnly: (authority: string | undefined) => boolean;
  /** True for a route host under the cookie domain: a login may return there (`rd`). */
  readonly mayReturnTo: (host: string) => boolean;
  /** The route host patterns that sign in on their own, for the startup log. */
  readonly foreignPatterns: readonly string[];
}

export interface LoginHostsOptions {
  /** authentication.session.oidc.redirectURL. */
  readonly redirectURL: string;
  readonly pathPrefix: string;
  /** authentication.session.cookie.domain ('' for none). */
  readonly cookieDomain: string;
  /** The routes' host patterns (exact or `*.`); empty without routes. */
  readonly routeHosts: readonly string[];
}

export function createLoginHosts(options: LoginHostsOptions): LoginHosts {
  const login = new URL(options.redirectURL);
  const loginHost = hostOf(login.host);
  const domain = options.cookieDomain.replace(/^\./, '').toLowerCase();
  const underDomain = (host: string) => domain !== '' && (host === domain || host.endsWith(`.${domain}`));
  const isRouteHost = (host: string) => options.routeHosts.some((pattern) => hostMatches(pattern, host));
  /** A route host under the cookie domain: its browsers sign in on the login host and come back. */
  const domainRouteHost = (host: string | undefined) => host !== undefined && underDomain(host) && isRouteHost(host);
  const foreign = (authority: string | undefined) => {
    const host = hostOf(authority);
    return host !== undefined && host !== loginHost && !underDomain(host) && isRouteHost(host);
  };
  const start = (target: string) => `${options.pathPrefix}/start?rd=${encodeURIComponent(target)}`;

  return {
    startURL: (authority, target) => {
      const host = hostOf(authority);
      if (host === loginHost || !domainRouteHost(host)) return start(target);
      return `${login.origin}${start(`https://${authority}${target}`)}`;
    },
    redirectURL: (authority) => (foreign(authority) ? `https://${authority}${options.pathPrefix}/callback` : options.redirectURL),
    hostOnly: foreign,
    foreignPatterns: options.routeHosts.filter((pattern) => {
      const host = pattern.replace(/^\*\./, '');
      return host !== loginHost && !underDomain(host);
    }),
    mayReturnTo: (host) => domainRouteHost(hostOf(host)),
  };
}
