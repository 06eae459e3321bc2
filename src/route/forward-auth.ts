/**
 * Forward-auth: an ingress (nginx `auth_request`, ingress-nginx `auth-url`,
 * Traefik ForwardAuth, Envoy `ext_authz` over HTTP) asks the proxy about a
 * request it holds, and lets it through on a 2xx. What the ingress tells us
 * of that request, and what we tell it back, in oauth2-proxy's names, so
 * existing ingress annotations work unchanged.
 */
import type { ClientRequest } from '../request/client.js';
import { authority, hostOf } from '../request/client.js';
import { originOf } from '../request/origin.js';

/** The request the ingress holds: its host and path, and its origin as a browser writes it. */
export interface OriginalRequest {
  readonly host: string | undefined;
  readonly path: string;
  readonly origin: string | undefined;
}

const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/**
 * Read from X-Original-URL (ingress-nginx), X-Forwarded-Host with
 * X-Forwarded-Uri (Traefik) or X-Original-URI (the usual nginx
 * `proxy_set_header`), else this request's own Host and `/`. An ingress
 * overwrites only the headers it sets itself, so a client may add the
 * others: when sources disagree the answer is undefined (refused).
 *
 * Envoy's `ext_authz` (HTTP) sends no such header: it asks at its
 * `path_prefix` followed by the original path, with the original Host;
 * `envoyPath` is that original path (with its query), a source like the others.
 */
export function originalRequest(req: ClientRequest, envoyPath?: string): OriginalRequest | undefined {
  const forwardedHost = first(req.headers['x-forwarded-host']);
  const paths = [first(req.headers['x-forwarded-uri']), first(req.headers['x-original-uri']), envoyPath].filter((u): u is string => u !== undefined).map((u) => u.split('?')[0] || '/');
  let urlHost: string | undefined;
  let urlOrigin: string | undefined;
  const url = first(req.headers['x-original-url']);
  if (url !== undefined) {
    // Not parsed by URL: that would resolve dot segments the application may never see.
    const match = /^(https?):\/\/([^/?#]+)([^?#]*)/i.exec(url);
    if (!match) return undefined;
    urlHost = hostOf(match[2]);
    if (urlHost === undefined) return undefined;
    urlOrigin = originOf(`${match[1]}://${match[2]}`);
    paths.push(match[3] || '/');
  }
  const forwardedName = hostOf(forwardedHost);
  if (forwardedHost !== undefined && forwardedName === undefined) return undefined;
  // An ingress overwrites the headers it sets, not others a client may add: every source present must agree.
  if (urlHost !== undefined && forwardedName !== undefined && forwardedName !== urlHost) return undefined;
  // Envoy's check carries the original Host itself: a header beside it names the same host or nothing.
  if (envoyPath !== undefined) {
    const host = hostOf(authority(req));
    if ((urlHost !== undefined && urlHost !== host) || (forwardedName !== undefined && forwardedName !== host)) return undefined;
  }
  if (paths.some((p) => p !== paths[0] || !p.startsWith('/'))) return undefined;
  const origin = urlOrigin ?? originOf(`${first(req.headers['x-forwarded-proto']) === 'http' ? 'http' : 'https'}://${forwardedHost ?? authority(req) ?? ''}`);
  return { host: urlHost ?? forwardedName ?? hostOf(authority(req)), path: paths[0] ?? '/', origin };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Cross-site request forgery through the ingress: the browser attached the
 * session cookie (SameSite=Lax lets a sibling subdomain's page send it), and
 * the application behind the ingress would act on the identity we name. The
 * proxy's own routes refuse such a request (login/cookie-scope.ts); here the
 * original request is judged the same way, with the original URL's origin as
 * ours. nginx's auth subrequest is always a GET, so an Origin is checked
 * whatever the method reported (browsers send one on every cross-origin
 * request that is not a plain navigation, and on every POST); without one, a
 * method the ingress reports as unsafe (X-Forwarded-Method, Traefik;
 * X-Original-Method; Envoy's own method) needs a Referer of ours.
 */
export function isCrossSite(req: ClientRequest, original: OriginalRequest, allowedOrigins: readonly string[], envoy: boolean): boolean {
  const ours = (from: string | undefined) => from !== undefined && (from === original.origin || allowedOrigins.includes(from));
  const origin = first(req.headers.origin);
  if (origin !== undefined) return !ours(originOf(origin));
  // A client may add the method header its ingress does not set: any source saying unsafe counts.
  const methods = [first(req.headers['x-forwarded-method']), first(req.headers['x-original-method']), envoy ? req.method : undefined].filter((m): m is string => m !== undefined);
  if (methods.every((m) => SAFE_METHODS.has(m.toUpperCase()))) return false;
  return !ours(originOf(first(req.headers.referer)));
}

/**
 * The route the ingress says it fronts: `?route=finance` on the auth URL (nginx,
 * Traefik), or `X-Auth-Request-Route: finance` (Envoy's `headers_to_add`: its
 * check's query is the original request's). An original URL of another route is
 * refused. A client adding either can only narrow its own answer; when both are
 * there, or either twice, they must agree (`''` when they do not: no route).
 */
export function pinnedRoute(req: ClientRequest, target: string, envoy: boolean): string | undefined {
  const pins = [...(envoy ? [] : authParams(target).getAll('route')), ...[req.headers['x-auth-request-route'] ?? []].flat()];
  if (pins.length === 0) return undefined;
  return pins.every((p) => p === pins[0]) ? pins[0] : '';
}

const authParams = (target: string) => new URLSearchParams(target.includes('?') ? target.slice(target.indexOf('?') + 1) : '');

/** oauth2-proxy's answer headers (`--set-xauthrequest`), from the application header lines. */
export function authRequestHeaders(applicationLines: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < applicationLines.length; i += 2) {
    headers[applicationLines[i].replace(/^X-Forwarded-/, 'X-Auth-Request-')] = applicationLines[i + 1];
  }
  return headers;
}

/**
 * The original path of an Envoy `ext_authz` check (`<auth path>/app/x?q` → `/app/x?q`),
 * or undefined for the plain auth URL. Envoy allows on 200 only, so such a check gets
 * 200 where nginx and Traefik get oauth2-proxy's 202.
 */
export function envoyOriginalPath(target: string, authPath: string): string | undefined {
  return target.startsWith(`${authPath}/`) ? target.slice(authPath.length) : undefined;
}

/** `?allowed_groups=a,b` on the auth URL, as oauth2-proxy reads it: the caller must be in one of them. */
export function allowedGroupsParam(target: string): string[] | undefined {
  const value = authParams(target).get('allowed_groups');
  return value ? value.split(',').map((g) => g.trim()).filter(Boolean) : undefined;
}
