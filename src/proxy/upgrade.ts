/**
 * Which requests the proxy forwards at all: the methods kube-apiserver serves,
 * and the two upgrades Kubernetes uses. Everything else is refused before it
 * can reach the upstream's trusted connection (h2c and other protocol switches
 * are a known way to smuggle requests past a proxy).
 */
import { hasBody, type ClientRequest } from '../request/client.js';
import type { ProxyErrorCode } from '../request/errors.js';

const FORWARDED_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** exec, attach and port-forward: SPDY/3.1 (kubectl's long-standing dialer) and WebSocket (kubectl 1.30+). */
const TUNNELLED_PROTOCOLS = new Set(['spdy/3.1', 'websocket']);

export function methodRefusal(method: string): ProxyErrorCode | undefined {
  return FORWARDED_METHODS.has(method) ? undefined : 'METHOD_NOT_ALLOWED';
}

/** An upgrade is tunnelled only for one known protocol token, by GET or POST, with no body. */
export function upgradeRefusal(req: ClientRequest): ProxyErrorCode | undefined {
  const lines: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() === 'upgrade') lines.push(req.rawHeaders[i + 1]);
  }
  if (lines.length !== 1 || !TUNNELLED_PROTOCOLS.has(lines[0].trim().toLowerCase())) return 'UPGRADE_NOT_SUPPORTED';
  if (req.method !== 'GET' && req.method !== 'POST') return 'UPGRADE_NOT_SUPPORTED';
  return hasBody(req) ? 'UPGRADE_NOT_SUPPORTED' : undefined;
}
