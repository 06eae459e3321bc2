/**
 * The browser login routes under <pathPrefix>: start, callback, sign_out,
 * userinfo, kubeconfig, backchannel_logout, and the pages' static files.
 * Helmet's headers (a strict CSP) go on these pages only; responses
 * forwarded from the upstream are never touched.
 *
 * A route table on plain Node requests rather than an express app: express
 * replaces the request's prototype with its own (an HTTP/1.1 IncomingMessage),
 * which breaks Node's HTTP/2 requests, and the listener offers HTTP/2.
 */
import { serialize as serializeCookie } from 'cookie';
import helmet from 'helmet';
import { stringify } from 'yaml';
import type { Identity, TokenAuthenticator } from '../authn/identity.js';
import type { SessionAuthenticator } from '../authn/session-authenticator.js';
import type { SessionConfig } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { authority, type ClientRequest, type ClientResponse } from '../proxy/client.js';
import type { LogoutTokenVerifier } from './backchannel.js';
import { endSessionUrl, finishLogin, startLogin, type OidcClient } from './oidc-client.js';
import { errorPage, kubeconfigPage, PAGE_CSS, PAGE_JS } from './pages.js';
import { safeRedirect } from './redirect.js';
import { appendSetCookie, readForm, redirect, send, sendJson } from './reply.js';
import { destroySession, loadSession, regenerateSession, saveSession, type SessionMiddleware, type SessionRequest } from './session.js';
import type { SessionBackend } from './store/types.js';

export interface LoginRoutesDeps {
  readonly config: SessionConfig;
  readonly middleware: SessionMiddleware;
  readonly backend: SessionBackend;
  readonly client: () => OidcClient | undefined;
  readonly tokens: TokenAuthenticator;
  readonly authenticateSession: SessionAuthenticator;
  readonly logoutTokens: LogoutTokenVerifier;
  /** PEM embedded in offered kubeconfigs, when configured. */
  readonly kubeconfigCA: string | undefined;
  readonly logger: Logger;
}

export type LoginRoutes = (req: ClientRequest, res: ClientResponse) => void;

type Route = (req: ClientRequest, res: ClientResponse, url: URL) => Promise<void> | void;
type Middleware = (req: ClientRequest, res: ClientResponse, next: (err?: unknown) => void) => void;

/** A logout token is a few KiB; anything far larger is not one. */
const BACKCHANNEL_BODY_LIMIT = 16 * 1024;

export function createLoginRoutes(deps: LoginRoutesDeps): LoginRoutes {
  const { config, logger } = deps;
  const prefix = config.pathPrefix;
  const securityHeaders = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    },
  }) as unknown as Middleware;

  const page = (res: ClientResponse, status: number, message: string) => send(res, status, 'text/html', errorPage(prefix, message));
  const withClient = (res: ClientResponse): OidcClient | undefined => {
    const client = deps.client();
    if (!client) page(res, 503, 'The identity provider cannot be reached yet. Try again in a moment.');
    return client;
  };
  /** The request's session (new and empty when it has none); express-session keeps it on req. */
  const session = async (req: ClientRequest, res: ClientResponse) => (await loadSession(deps.middleware, req, res)).session!;

  const start: Route = async (req, res, url) => {
    const client = withClient(res);
    if (!client) return;
    const sess = await session(req, res);
    const login = await startLogin(client, config.oidc, safeRedirect(url.searchParams.get('rd') ?? undefined, config.allowedRedirectHosts));
    sess.pending = login.pending;
    await saveSession(sess);
    redirect(res, login.url.href);
  };

  const callback: Route = async (req, res, url) => {
    const client = withClient(res);
    if (!client) return;
    const sess = await session(req, res);
    const pending = sess.pending;
    if (!pending) return page(res, 400, 'This sign-in link has expired or was already used.');
    // One use only: a replayed callback finds nothing to finish.
    delete sess.pending;
    await saveSession(sess);
    let tokens;
    try {
      tokens = await finishLogin(client, config.oidc, url.search, pending);
    } catch (err) {
      logger.info({ err: (err as Error).message }, 'login callback refused');
      return page(res, 400, "The identity provider's answer could not be verified.");
    }
    // The same mapping as a bearer token: a token that would be refused as one is refused here.
    const outcome = await deps.tokens.authenticateToken(tokens.idToken);
    if (outcome.kind !== 'authenticated') {
      logger.info({ reason: outcome.kind === 'rejected' ? outcome.reason : outcome.kind }, 'login refused by the jwt rules');
      return page(res, 403, 'Your account is not allowed to use this service.');
    }
    // A new session id at login: an id planted before login is worthless after it.
    // regenerate() puts a new session on req; read it afresh.
    await regenerateSession(sess);
    const fresh = (req as SessionRequest).session!;
    fresh.tokens = { idToken: tokens.idToken, ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}), expiresAt: tokens.expiresAt };
    fresh.createdAt = Date.now();
    await saveSession(fresh);
    await deps.backend.index(fresh.id, { sub: tokens.sub, ...(tokens.sid ? { sid: tokens.sid } : {}) });
    redirect(res, pending.returnTo);
  };

  const signOut: Route = async (req, res) => {
    const sess = await session(req, res);
    const idToken = sess.tokens?.idToken;
    await destroySession(sess);
    const { name, domain } = config.cookie;
    appendSetCookie(res, serializeCookie(name, '', { path: '/', ...(domain ? { domain } : {}), expires: new Date(0), secure: true, httpOnly: true, sameSite: 'lax' }));
    const client = deps.client();
    const logout = client && endSessionUrl(client, idToken);
    if (logout) return redirect(res, logout.href);
    send(res, 200, 'text/html', errorPage(prefix, 'You are signed out.').replace('Sign-in failed', 'Signed out'));
  };

  /** The session's identity, or a 401 answer. */
  const identityOf = async (req: ClientRequest, res: ClientResponse): Promise<Identity | undefined> => {
    const outcome = await deps.authenticateSession(req, res);
    if (outcome.kind === 'authenticated') return outcome.identity;
    if (outcome.kind === 'unavailable') sendJson(res, 503, { error: 'session store unavailable' });
    else sendJson(res, 401, { error: 'not signed in', login: `${prefix}/start` });
    return undefined;
  };

  const userinfo: Route = async (req, res) => {
    const identity = await identityOf(req, res);
    if (identity) sendJson(res, 200, { user: identity.username, uid: identity.uid, groups: identity.groups, extra: identity.extra });
  };

  const kubeconfig: Route = async (req, res, url) => {
    const outcome = await deps.authenticateSession(req, res);
    if (outcome.kind !== 'authenticated') return redirect(res, `${prefix}/start?rd=${encodeURIComponent(`${prefix}/kubeconfig`)}`);
    // An authenticated session has tokens; the authenticator left it on req.
    const tokens = (req as SessionRequest).session!.tokens!;
    const server = config.kubeconfig.server ?? `https://${authority(req)}`;
    const tokenKubeconfig = kubeconfigYaml(config, server, deps.kubeconfigCA, { token: tokens.idToken });
    const kubeloginKubeconfig = config.kubeconfig.kubeloginClientID
      ? kubeconfigYaml(config, server, deps.kubeconfigCA, {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: 'kubectl',
            args: ['oidc-login', 'get-token', `--oidc-issuer-url=${config.oidc.issuerURL}`, `--oidc-client-id=${config.kubeconfig.kubeloginClientID}`],
            interactiveMode: 'IfAvailable',
          },
        })
      : undefined;
    const download = url.searchParams.get('download');
    if (download === 'token' || (download === 'kubelogin' && kubeloginKubeconfig)) {
      const body = download === 'token' ? tokenKubeconfig : kubeloginKubeconfig!;
      return send(res, 200, 'application/yaml', body, { 'content-disposition': 'attachment; filename="kubeconfig"' });
    }
    send(
      res,
      200,
      'text/html',
      kubeconfigPage(prefix, {
        identity: outcome.identity,
        tokenKubeconfig,
        ...(kubeloginKubeconfig ? { kubeloginKubeconfig } : {}),
        expiresAt: new Date(tokens.expiresAt),
      }),
    );
  };

  const backchannelLogout: Route = async (req, res) => {
    const form = await readForm(req, BACKCHANNEL_BODY_LIMIT);
    const token = form?.get('logout_token');
    const logout = token ? await deps.logoutTokens.verify(token) : undefined;
    if (!logout) return sendJson(res, 400, { error: 'invalid_request' });
    const ended = await deps.backend.destroyByIdp(logout);
    logger.info({ sessions: ended }, 'back-channel logout');
    res.writeHead(200, { 'content-length': '0' }).end();
  };

  const routes = new Map<string, Partial<Record<'GET' | 'POST', Route>>>([
    [`${prefix}/static/page.css`, { GET: (_req, res) => send(res, 200, 'text/css', PAGE_CSS) }],
    [`${prefix}/static/page.js`, { GET: (_req, res) => send(res, 200, 'application/javascript', PAGE_JS) }],
    [`${prefix}/start`, { GET: start }],
    [`${prefix}/callback`, { GET: callback }],
    [`${prefix}/sign_out`, { GET: signOut, POST: signOut }],
    [`${prefix}/userinfo`, { GET: userinfo }],
    [`${prefix}/kubeconfig`, { GET: kubeconfig }],
    [`${prefix}/backchannel_logout`, { POST: backchannelLogout }],
  ]);

  return (req, res) => {
    securityHeaders(req, res, () => {});
    res.setHeader('cache-control', 'no-store');
    const url = new URL(req.url ?? '/', 'https://login.invalid');
    const methods = routes.get(url.pathname);
    if (!methods) return page(res, 404, 'There is no such page.');
    const route = methods[req.method === 'HEAD' ? 'GET' : (req.method as 'GET' | 'POST')];
    if (!route) {
      res.setHeader('allow', Object.keys(methods).join(', '));
      return page(res, 405, 'This page does not take that method.');
    }
    // Errors (the store down, the provider failing mid-flow) get a page, never a stack trace.
    Promise.resolve()
      .then(() => route(req, res, url))
      .catch((err: unknown) => {
        logger.warn({ err: (err as Error)?.message }, 'login route failed');
        if (!res.headersSent) page(res, 503, 'Sign-in is unavailable right now. Try again in a moment.');
        else res.destroy();
      });
  };
}

function kubeconfigYaml(config: SessionConfig, server: string, ca: string | undefined, user: Record<string, unknown>): string {
  const name = config.kubeconfig.clusterName;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server, ...(ca ? { 'certificate-authority-data': Buffer.from(ca).toString('base64') } : {}) } }],
    users: [{ name: `${name}-oidc`, user }],
    contexts: [{ name, context: { cluster: name, user: `${name}-oidc` } }],
    'current-context': name,
  });
}
