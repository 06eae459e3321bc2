/**
 * Which credential a request carries, and who it proves the caller is. Today:
 * a Bearer JWT. The browser session cookie joins here as a second source.
 */
import type { IncomingMessage } from 'node:http';
import { bearerToken } from './bearer.js';
import { absent, rejected, type AuthOutcome, type TokenAuthenticator } from './identity.js';

export function createRequestAuthenticator(tokens: TokenAuthenticator): (req: IncomingMessage) => Promise<AuthOutcome> {
  return async (req) => {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) return absent;
    if (token === null) return rejected('malformed_token');
    return tokens.authenticateToken(token);
  };
}
