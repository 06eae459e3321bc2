/**
 * Cross-site request forgery guard for cookie-authenticated requests: a
 * request that changes state must say it comes from our own origin (or one the
 * configuration allows). A browser always sends Origin on cross-site POSTs
 * (and Referer unless told not to), so a missing or foreign origin is refused.
 * Bearer requests are not affected: a browser never attaches a bearer token by
 * itself.
 */
import { authority, type ClientRequest } from '../request/client.js';
import { originOf } from '../request/origin.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * True for a safe method (GET, HEAD, OPTIONS), or when the request comes from
 * this proxy's own origin or one of `allowedOrigins` (each written as
 * `https://host[:port]`, as authentication.session.allowedOrigins holds them).
 */
export function isSameOriginOrSafe(req: ClientRequest, allowedOrigins: readonly string[] = []): boolean {
  return SAFE_METHODS.has(req.method ?? 'GET') || isSameOrigin(req, allowedOrigins);
}

/**
 * True when the request's Origin (or, without one, its Referer) is this
 * proxy's own origin or one of `allowedOrigins`, whatever the method: for a
 * state-changing request, and for upgrades, which are GETs. Without either
 * header, or with `Origin: null`, false.
 */
export function isSameOrigin(req: ClientRequest, allowedOrigins: readonly string[] = []): boolean {
  const from = originOf(req.headers.origin ?? req.headers.referer);
  if (from === undefined) return false;
  return from === originOf(`https://${authority(req) ?? ''}`) || allowedOrigins.includes(from);
}
