/**
 * Cross-site request forgery guard for cookie-authenticated requests: a
 * request that changes state must say it comes from our own origin. A browser
 * always sends Origin on cross-site POSTs (and Referer unless told not to), so
 * a missing or foreign origin is refused. Bearer requests are not affected:
 * a browser never attaches a bearer token by itself.
 */
import { authority, type ClientRequest } from '../proxy/client.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isSameOriginOrSafe(req: ClientRequest): boolean {
  if (SAFE_METHODS.has(req.method ?? 'GET')) return true;
  const own = `https://${authority(req) ?? ''}`;
  const origin = req.headers.origin;
  if (origin !== undefined) return origin === own;
  const referer = req.headers.referer;
  return referer !== undefined && URL.canParse(referer) && new URL(referer).origin === own;
}
