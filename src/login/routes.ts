/**
 * The browser login routes under <pathPrefix>: start, callback, sign_out,
 * userinfo, kubeconfig, backchannel_logout. An express app with helmet on
 * these pages only; responses forwarded from the upstream are never touched.
 */
import express, { type Request, type Response } from 'express';
import helmet from 'helmet';
import { stringify } from 'yaml';
import type { Identity, TokenAuthenticator } from '../authn/identity.js';
import type { SessionAuthenticator } from '../authn/session-authenticator.js';
import type { SessionConfig } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import type { LogoutTokenVerifier } from './backchannel.js';
import { endSessionUrl, finishLogin, startLogin, type OidcClient } from './oidc-client.js';
import { errorPage, kubeconfigPage, PAGE_CSS, PAGE_JS } from './pages.js';
import { safeRedirect } from './redirect.js';
import { destroySession, regenerateSession, saveSession, type SessionMiddleware } from './session.js';
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

export function createLoginRoutes(deps: LoginRoutesDeps): express.Express {
  const { config, logger } = deps;
  const prefix = config.pathPrefix;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(
    prefix,
    helmet({
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
    }),
    (_req, res, next) => {
      res.set('cache-control', 'no-store');
      next();
    },
  );
  app.get(`${prefix}/static/page.css`, (_req, res) => void res.type('text/css').send(PAGE_CSS));
  app.get(`${prefix}/static/page.js`, (_req, res) => void res.type('application/javascript').send(PAGE_JS));

  const fail = (res: Response, status: number, message: string) => void res.status(status).type('html').send(errorPage(prefix, message));
  const withClient = (res: Response): OidcClient | undefined => {
    const client = deps.client();
    if (!client) fail(res, 503, 'The identity provider cannot be reached yet. Try again in a moment.');
    return client;
  };
  const sessions = deps.middleware as unknown as express.RequestHandler;

  app.get(`${prefix}/start`, sessions, async (req, res) => {
    const client = withClient(res);
    if (!client) return;
    const { url, pending } = await startLogin(client, config.oidc, safeRedirect(req.query.rd, config.allowedRedirectHosts));
    req.session.pending = pending;
    await saveSession(req.session);
    res.redirect(303, url.href);
  });

  app.get(`${prefix}/callback`, sessions, async (req, res) => {
    const client = withClient(res);
    if (!client) return;
    const pending = req.session.pending;
    if (!pending) return fail(res, 400, 'This sign-in link has expired or was already used.');
    // One use only: a replayed callback finds nothing to finish.
    delete req.session.pending;
    await saveSession(req.session);
    let tokens;
    try {
      tokens = await finishLogin(client, config.oidc, new URL(req.originalUrl, 'https://x').search, pending);
    } catch (err) {
      logger.info({ err: (err as Error).message }, 'login callback refused');
      return fail(res, 400, 'The identity provider\'s answer could not be verified.');
    }
    // The same mapping as a bearer token: a token that would be refused as one is refused here.
    const outcome = await deps.tokens.authenticateToken(tokens.idToken);
    if (outcome.kind !== 'authenticated') {
      logger.info({ reason: outcome.kind === 'rejected' ? outcome.reason : outcome.kind }, 'login refused by the jwt rules');
      return fail(res, 403, 'Your account is not allowed to use this service.');
    }
    // A new session id at login: an id planted before login is worthless after it.
    await regenerateSession(req.session);
    req.session.tokens = { idToken: tokens.idToken, ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}), expiresAt: tokens.expiresAt };
    req.session.createdAt = Date.now();
    await saveSession(req.session);
    await deps.backend.index(req.sessionID, { sub: tokens.sub, ...(tokens.sid ? { sid: tokens.sid } : {}) });
    res.redirect(303, pending.returnTo);
  });

  const signOut = async (req: Request, res: Response) => {
    const idToken = req.session.tokens?.idToken;
    await destroySession(req.session);
    res.clearCookie(config.cookie.name, { path: '/', ...(config.cookie.domain ? { domain: config.cookie.domain } : {}), secure: true, httpOnly: true, sameSite: 'lax' });
    const client = deps.client();
    const logout = client && endSessionUrl(client, idToken);
    if (logout) return res.redirect(303, logout.href);
    res.type('html').send(errorPage(prefix, 'You are signed out.').replace('Sign-in failed', 'Signed out'));
  };
  app.get(`${prefix}/sign_out`, sessions, signOut);
  app.post(`${prefix}/sign_out`, sessions, signOut);

  /** The session's identity, or a 401 answer. */
  const identityOf = async (req: Request, res: Response): Promise<Identity | undefined> => {
    const outcome = await deps.authenticateSession(req, res);
    if (outcome.kind === 'authenticated') return outcome.identity;
    if (outcome.kind === 'unavailable') res.status(503).json({ error: 'session store unavailable' });
    else res.status(401).json({ error: 'not signed in', login: `${prefix}/start` });
    return undefined;
  };

  app.get(`${prefix}/userinfo`, async (req, res) => {
    const identity = await identityOf(req, res);
    if (identity) res.json({ user: identity.username, uid: identity.uid, groups: identity.groups, extra: identity.extra });
  });

  app.get(`${prefix}/kubeconfig`, async (req, res) => {
    const outcome = await deps.authenticateSession(req, res);
    if (outcome.kind !== 'authenticated') return res.redirect(303, `${prefix}/start?rd=${encodeURIComponent(`${prefix}/kubeconfig`)}`);
    const session = (req as unknown as { session: { tokens: { idToken: string; expiresAt: number } } }).session;
    const server = config.kubeconfig.server ?? `https://${req.headers.host}`;
    const tokenKubeconfig = kubeconfigYaml(config, server, deps.kubeconfigCA, { token: session.tokens.idToken });
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
    const download = req.query.download;
    if (download === 'token' || (download === 'kubelogin' && kubeloginKubeconfig)) {
      res.set('content-disposition', 'attachment; filename="kubeconfig"');
      return res.type('application/yaml').send(download === 'token' ? tokenKubeconfig : kubeloginKubeconfig);
    }
    res.type('html').send(
      kubeconfigPage(prefix, {
        identity: outcome.identity,
        tokenKubeconfig,
        ...(kubeloginKubeconfig ? { kubeloginKubeconfig } : {}),
        expiresAt: new Date(session.tokens.expiresAt),
      }),
    );
  });

  app.post(`${prefix}/backchannel_logout`, express.urlencoded({ extended: false, limit: '16kb' }), async (req, res) => {
    const token = (req.body as Record<string, unknown> | undefined)?.logout_token;
    const logout = typeof token === 'string' ? await deps.logoutTokens.verify(token) : undefined;
    if (!logout) return void res.status(400).json({ error: 'invalid_request' });
    const ended = await deps.backend.destroyByIdp(logout);
    logger.info({ sessions: ended }, 'back-channel logout');
    res.status(200).end();
  });

  // Errors (the store down, the provider failing mid-flow) get a page, never a stack trace.
  app.use((err: unknown, _req: Request, res: Response, _next: express.NextFunction) => {
    logger.warn({ err: (err as Error)?.message }, 'login route failed');
    if (!res.headersSent) fail(res, 503, 'Sign-in is unavailable right now. Try again in a moment.');
  });
  return app;
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
