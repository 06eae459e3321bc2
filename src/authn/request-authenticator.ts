/**
 * Which credential a request carries, and who it proves the caller is: a
 * Bearer JWT first (what kubectl sends), from the Authorization header or, on
 * a WebSocket handshake without one, from the bearer subprotocol (what
 * browsers send); otherwise the browser session cookie, when browser login is
 * configured. A request never mixes the two.
 */
import type { ClientRequest, ClientResponse } from '../proxy/client.js';
import { bearerToken } from './bearer.js';
import { websocketBearerToken } from './websocket-protocol.js';
import { absent, rejected, type AuthOutcome, type TokenAuthenticator } from './identity.js';
import type { SessionAuthenticator } from './session-authenticator.js';

export type RequestAuthenticator = (req: ClientRequest, res: ClientResponse) => Promise<AuthOutcome>;

export interface SessionSource {
  /** True when the request carries the session cookie. */
  readonly present: (req: ClientRequest) => boolean;
  readonly authenticate: SessionAuthenticator;
}

export function createRequestAuthenticator(tokens: TokenAuthenticator, session?: SessionSource): RequestAuthenticator {
  return async (req, res) => {
    const header = bearerToken(req.headers.authorization);
    // Authorization takes precedence; the subprotocol is read only without one.
    const token = header === undefined ? websocketBearerToken(req) : header;
    if (token === null) return rejected('malformed_token');
    if (token !== undefined) return tokens.authenticateToken(token);
    if (session?.present(req)) return session.authenticate(req, res);
    return absent;
  };
}
