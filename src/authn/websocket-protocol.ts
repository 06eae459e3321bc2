/**
 * The bearer token a browser puts in a WebSocket subprotocol, since it cannot
 * set Authorization on a WebSocket: `base64url.bearer.authorization.k8s.io.<token>`.
 * The same rules as kube-apiserver's websocket ProtocolAuthenticator
 * (k8s.io/apiserver/pkg/authentication/request/websocket/protocol.go). The
 * entry is removed before forwarding by proxy/request-headers.ts.
 */
import type { ClientRequest } from '../request/client.js';

export const BEARER_PROTOCOL_PREFIX = 'base64url.bearer.authorization.k8s.io.';

const BASE64URL_UNPADDED = /^[A-Za-z0-9_-]*$/;

/** A WebSocket handshake, as kube's wsstream.IsWebSocketRequest tells one. */
function isWebSocketRequest(req: ClientRequest): boolean {
  const connection = String(req.headers.connection ?? '').toLowerCase();
  return connection.split(',').some((t) => t.trim() === 'upgrade') && String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
}

/**
 * The token from a WebSocket handshake's subprotocols.
 *
 * @returns the token; `undefined` when this is not a WebSocket handshake or it
 *   carries no token protocol; `null` when it carries one that kube-apiserver
 *   would refuse (two of them, bad base64url, not UTF-8, empty, or no other
 *   subprotocol left to echo back).
 */
export function websocketBearerToken(req: ClientRequest): string | undefined | null {
  if (!isWebSocketRequest(req)) return undefined;
  const header = req.headers['sec-websocket-protocol'];
  if (header === undefined) return undefined;
  let token: string | undefined;
  let others = 0;
  // Node joins repeated Sec-WebSocket-Protocol lines with ", ", which splits the same way.
  for (const entry of String(header).split(',')) {
    const protocol = entry.trim();
    if (!protocol.startsWith(BEARER_PROTOCOL_PREFIX)) {
      others++;
      continue;
    }
    if (token !== undefined) return null;
    const encoded = protocol.slice(BEARER_PROTOCOL_PREFIX.length);
    if (!BASE64URL_UNPADDED.test(encoded) || encoded.length % 4 === 1) return null;
    const bytes = Buffer.from(encoded, 'base64url');
    const decoded = new TextDecoder('utf-8', { fatal: true });
    try {
      token = decoded.decode(bytes);
    } catch {
      return null;
    }
  }
  if (token === undefined) return undefined;
  return token === '' || others === 0 ? null : token;
}
