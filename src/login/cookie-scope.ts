/**
 * What the session cookie may do. A browser attaches it to every request to
 * our site, whoever's page started the request, so a request it authenticates
 * is held to more than a bearer token is:
 *
 * - not on pods/proxy, services/proxy or nodes/proxy: kube-apiserver serves
 *   whatever a workload returns there on our own origin, and a script in such
 *   a page would be same-origin with the API (kubernetes/kubernetes#10351);
 * - an upgrade (exec, attach, port-forward) only from our own origin: it is a
 *   GET, which the cross-site check would let pass, and browsers always send
 *   Origin on a WebSocket handshake (cross-site WebSocket hijacking);
 * - a request that changes state only from our own origin (cross-site request forgery).
 */
import type { ClientRequest } from '../request/client.js';
import type { ProxyErrorCode } from '../request/errors.js';
import { isSameOrigin, isSameOriginOrSafe } from './same-origin.js';

/** Resources whose `proxy` subresource relays content the cluster's workloads control. */
const PROXYING_RESOURCES = new Set(['pods', 'services', 'nodes']);

export function sessionRefusal(req: ClientRequest, path: string, isUpgrade: boolean, allowedOrigins: readonly string[]): ProxyErrorCode | undefined {
  if (reachesWorkloadContent(path)) return 'SESSION_NOT_ACCEPTED_HERE';
  // Browsers always send Origin on a WebSocket handshake: a Referer alone does not do for an upgrade.
  const allowed = isUpgrade ? req.headers.origin !== undefined && isSameOrigin(req, allowedOrigins) : isSameOriginOrSafe(req, allowedOrigins);
  return allowed ? undefined : 'CROSS_SITE_REQUEST';
}

/**
 * True for `…/{pods,services,nodes}/<name>/proxy[/…]` and the legacy
 * `/api/v1/proxy/…`, however the path is spelt. The path is percent-decoded
 * once, as Go's URL.Path is (so `pods%2Fweb%2Fproxy` is three segments, as
 * kube-apiserver routes it). kube-apiserver never resolves `..` (it routes
 * `…/pods/web/proxy/..%2F` to the pod's proxy), while a server behind the
 * gateway may: the path counts if it names a proxy subresource read either way.
 * A path that cannot be decoded counts as one (fail closed).
 */
export function reachesWorkloadContent(path: string): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return true;
  }
  const asSent = decoded.split('/').filter((segment) => segment !== '' && segment !== '.');
  const resolved: string[] = [];
  for (const segment of asSent) {
    if (segment === '..') resolved.pop();
    else resolved.push(segment);
  }
  return namesProxySubresource(asSent) || namesProxySubresource(resolved);
}

function namesProxySubresource(segments: readonly string[]): boolean {
  if (segments[0] === 'api' && segments[2] === 'proxy') return true;
  return segments.some((s, i) => s === 'proxy' && i >= 2 && PROXYING_RESOURCES.has(segments[i - 2]));
}
