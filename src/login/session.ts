/**
 * express-session, configured once for both users of it: the login routes,
 * and the session authenticator on proxied requests. The cookie is always
 * HttpOnly, Secure and SameSite=Lax; its id is signed with the cookie secret.
 */
import type { ClientRequest, ClientResponse } from '../request/client.js';
import session, { type Session, type SessionData } from 'express-session';
import type { SessionConfig } from '../config/schema.js';
import type { SessionBackend } from './store/types.js';

declare module 'express-session' {
  interface SessionData {
    /** After login. */
    tokens: { idToken: string; accessToken?: string; refreshToken?: string; expiresAt: number };
    /** Epoch ms of the login, for the absolute lifetime. */
    createdAt: number;
    /** The host a host-only session was made for (a foreign gateway host's own login); none for a session of the cookie's domain. */
    host: string;
  }
}

export type SessionRequest = ClientRequest & { session?: Session & Partial<SessionData>; sessionID?: string };
export type SessionMiddleware = (req: ClientRequest, res: ClientResponse, next: (err?: unknown) => void) => void;

export function createSessionMiddleware(config: SessionConfig, backend: SessionBackend, secrets: string[]): SessionMiddleware {
  return session({
    name: config.cookie.name,
    secret: secrets,
    store: backend.store,
    resave: false,
    // No session for a visitor until a login completes (the pending login is a cookie of its own).
    saveUninitialized: false,
    rolling: false,
    // Our listener is TLS itself; express-session must not look for a proxy's X-Forwarded-Proto.
    proxy: false,
    cookie: {
      httpOnly: true,
      secure: true,
      sameSite: 'lax',
      path: '/',
      ...(config.cookie.domain ? { domain: config.cookie.domain } : {}),
      maxAge: config.cookie.maxAge,
    },
  }) as unknown as SessionMiddleware;
}

/** Runs the middleware as a promise: the session (possibly new and empty) is on req afterwards. */
export function loadSession(middleware: SessionMiddleware, req: ClientRequest, res: ClientResponse): Promise<SessionRequest> {
  if (!('_implicitHeader' in res)) withImplicitHeader(res);
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- express-session's error, passed on as it came
  return new Promise((resolve, reject) => middleware(req, res, (err) => (err ? reject(err) : resolve(req))));
}

/**
 * express-session's end() calls res._implicitHeader() when no head was sent,
 * an HTTP/1.1 ServerResponse internal that Node's HTTP/2 response lacks (it
 * throws a TypeError there, e.g. when the client reset the stream before the
 * answer). This is what the HTTP/1.1 one does: send the head as it stands.
 */
function withImplicitHeader(res: ClientResponse): void {
  Object.defineProperty(res, '_implicitHeader', { value: () => void res.writeHead(res.statusCode) });
}

export const saveSession = (s: Session) => new Promise<void>((resolve, reject) => s.save((err) => (err ? reject(err) : resolve())));
export const reloadSession = (s: Session) => new Promise<void>((resolve, reject) => s.reload((err) => (err ? reject(err) : resolve())));
export const destroySession = (s: Session) => new Promise<void>((resolve, reject) => s.destroy((err) => (err ? reject(err) : resolve())));
export const regenerateSession = (s: Session) => new Promise<void>((resolve, reject) => s.regenerate((err) => (err ? reject(err) : resolve())));


/** What a session keeps of the provider's tokens. */
export function storedTokens(tokens: { idToken: string; accessToken?: string; refreshToken?: string; expiresAt: number }): SessionData['tokens'] {
  return {
    idToken: tokens.idToken,
    ...(tokens.accessToken ? { accessToken: tokens.accessToken } : {}),
    ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}),
    expiresAt: tokens.expiresAt,
  };
}

/** The session's access token, once the session middleware has read the request's session. */
export const sessionAccessToken = (req: ClientRequest): string | undefined => (req as SessionRequest).session?.tokens?.accessToken;
