/**
 * The bearer token as a credential: from the Authorization header (what
 * kubectl sends) or, on a WebSocket handshake without one, from the bearer
 * subprotocol (what browsers send). Authorization takes precedence.
 */
import { rejected, absent } from '../request/identity.js';
import type { RequestAuthenticator, TokenAuthenticator } from './authenticator.js';
import { bearerToken } from './bearer.js';
import { websocketBearerToken } from './websocket-protocol.js';

export function createBearerAuthenticator(tokens: TokenAuthenticator): RequestAuthenticator {
  return async (req) => {
    const header = bearerToken(req.headers.authorization);
    const token = header === undefined ? websocketBearerToken(req) : header;
    if (token === null) return rejected('malformed_token');
    return token === undefined ? absent : tokens.authenticateToken(token);
  };
}
