/**
 * The bearer token as a credential: from the Authorization header (what
 * kubectl sends) or, on a WebSocket handshake without one, from the bearer
 * subprotocol (what browsers send). Authorization takes precedence.
 */
import type { ClientRequest } from '../request/client.js';
import { rejected, absent } from '../request/identity.js';
import type { RequestAuthenticator, TokenAuthenticator } from './authenticator.js';
import { bearerToken } from './bearer.js';
import { websocketBearerToken } from './websocket-protocol.js';

/** The bearer token a request carries, as kube reads it: the Authorization header, else the WebSocket subprotocol; null when malformed. */
export function requestBearerToken(req: ClientRequest): string | undefined | null {
  const header = bearerToken(req.headers.authorization);
  return header === undefined ? websocketBearerToken(req) : header;
}

export function createBearerAuthenticator(tokens: TokenAuthenticator): RequestAuthenticator {
  return async (req) => {
    const token = requestBearerToken(req);
    if (token === null) return rejected('malformed_token');
    return token === undefined ? absent : tokens.authenticateToken(token);
  };
}
