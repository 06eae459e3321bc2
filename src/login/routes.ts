/**
 * The browser login routes under <pathPrefix>: start, callback, sign_out,
 * userinfo, kubeconfig, backchannel_logout, and the pages' static files.
 * Helmet's headers (a strict CSP) go on these pages only; responses
 * forwarded from the upstream are never touched.
 *
 * A route table on plain Node requests rather than an express app: express
 * replaces the request's prototype with its own (an HTTP/1.1 IncomingMessage),
 * which breaks Node's HTTP/2 requests, and the listener offers HTTP/2.
 *
 * The session store is written only once a login has succeeded: the pending
 * login lives in its own sealed cookie (login-state.ts).
 */
import { serialize as serializeCookie } from 'cookie';
import helmet from 'helmet';
import { stringify } from 'yaml';
import type { TokenAuthenticator } from '../authn/authenticator.js';
import type { Identity } from '../request/identity.js';
import type { SessionAuthenticator } from './session-authenticator.js';
import type { SessionConfig } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { authority, type ClientRequest, type ClientResponse } from '../request/client.js';
import type { LogoutTokenVerifier } from './backchannel.js';
import { endSessionUrl, finishLogin, startLogin, type OidcClient } from './oidc-client.js';
import { hostOf } from '../request/client.js';
import type { LoginHosts } from './login-hosts.js';
import type { LoginState } from './login-state.js';
import { errorPage, kubeconfigPage, PAGE_CSS, PAGE_JS, signedOutPage, signOutPage, signOutRefusedPage } from './pages.js';
import { safeRedirect } from './redirect.js';
import { appendSetCookie, readForm, redirect, send, sendJson } from './reply.js';
import { isSameOrigin } from './same-origin.js';
import { destroySession, loadSession, regenerateSession, saveSession, storedTokens, type SessionMiddleware, type SessionRequest } from './session.js';
import type { SessionBackend } from './store/types.js';

export interface LoginRoutesDeps {
  readonly config: SessionConfig;
  readonly middleware: SessionMiddleware;
  readonly backend: SessionBackend;
  /** The pending login's cookie, between /start and /callback. */
  readonly loginState: LoginState;
  readonly client: () => OidcClient | undefined;
  readonly tokens: TokenAuthenticator;
  readonly authenticateSession: SessionAuthenticator;
  readonly logoutTokens: LogoutTokenVerifier;
  /** Which host a browser signs in on, and what its callback and cookie are. */
  readonly hosts: LoginHosts;
  /** PEM embedded in offered kubeconfigs, when configured. */
  readonly kubeconfigCA: string | undefined;
  readonly logger: Logger;
}

export type LoginRoutes = (req: ClientRequest, res: ClientResponse) => void;

type Route = (req: ClientRequest, res: ClientResponse, url: URL) => Promise<void> | void;
type Method = 'GET' | 'HEAD' | 'POST';
type Middleware = (req: ClientRequest, res: ClientResponse, next: (err?: unknown) => void) => void;

/** A logout token is a few KiB; anything far larger is not one. */
const BACKCHANNEL_BODY_LIMIT = 16 * 1024;

export function createLoginRoutes(deps: LoginRoutesDeps): LoginRoutes {
  const { config, logger, loginState } = deps;
  const prefix = config.pathPrefix;
  const providerLogoutOrigin = () => {
    const endpoint = deps.client()?.serverMetadata().end_session_endpoint;
    return endpoint && URL.canParse(endpoint) ? new URL(endpoint).origin : undefined;
  };
  const securityHeaders = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        connectSrc: ["'self'"],
        // The sign-out form's answer redirects to the provider's logout, and browsers hold
        // a form's redirects to form-action too.
        formAction: ["'self'", () => providerLogoutOrigin() ?? "'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    },
  }) as unknown as Middleware;

  const page = (res: ClientResponse, status: number, message: string) => send(res, status, 'text/html', errorPage(prefix, message));
  /**
   * A page with the sign-out form. Under helmet's no-referrer a browser posts the form
   * with `Origin: null`, which the same-origin check must refuse; same-origin still tells
   * other sites nothing. Only here: an error page's URL may hold the callback's code,
   * which no Referer may carry, not even to our own static files or the upstream.
   */
  const formPage = (res: ClientResponse, status: number, html: string) => send(res, status, 'text/html', html, { 'referrer-policy': 'same-origin' });
  const withClient = (res: ClientResponse): OidcClient | undefined => {
    const client = deps.client();
    if (!client) page(res, 503, 'The identity provider cannot be reached yet. Try again in a moment.');
    return client;
  };
  /** The request's session (new and empty when it has none); express-session keeps it on req. */
  const session = async (req: ClientRequest, res: ClientResponse) => (await loadSession(deps.middleware, req, res)).session!;

  /** Starts a login; nothing is stored on our side until it succeeds. */
  const start: Route = async (req, res, url) => {
    const client = withClient(res);
    if (!client) return;
    const returnTo = safeRedirect(url.searchParams.get('rd') ?? undefined, config.allowedRedirectHosts, deps.hosts.mayReturnTo);
    const login = await startLogin(client, config.oidc, returnTo, deps.hosts.redirectURL(authority(req)));
    appendSetCookie(res, await loginState.seal(login.pending));
    redirect(res, login.url.href);
  };

  const staleLogin = (res: ClientResponse) => page(res, 400, 'This sign-in link has expired or was already used.');

  const callback: Route = async (req, res, url) => {
    const client = withClient(res);
    if (!client) return;
    const opened = await loginState.open(req.headers.cookie);
    if (opened.kind === 'ambiguous') logger.info('login callback refused: the login-state cookie was sent twice');
    if (opened.kind === 'invalid') appendSetCookie(res, loginState.clear);
    if (opened.kind !== 'found') return staleLogin(res);
    const { pending } = opened;
    // The answer to a login this browser started earlier, replaced since by a newer one
    // (another tab): refused, and the newer login's cookie is left for its own callback.
    if (url.searchParams.get('state') !== pending.state) return staleLogin(res);
    appendSetCookie(res, loginState.clear);
    // One use only: a replayed callback, cookie and all, finds nothing to finish.
    if (!loginState.consume(pending.state)) return staleLogin(res);
    let tokens;
    try {
      // The login-state cookie is this host's alone, so the login started on this host too.
      tokens = await finishLogin(client, deps.hosts.redirectURL(authority(req)), url.search, pending);
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
    // The first write to the session store. A new session id at login: an id planted
    // before login is worthless after it. regenerate() puts a new session on req; read it afresh.
    const sess = await session(req, res);
    await regenerateSession(sess);
    const fresh = (req as SessionRequest).session!;
    // A foreign gateway host's session is its own: no cookie for a domain it is not in.
    if (deps.hosts.hostOnly(authority(req))) {
      fresh.cookie.domain = undefined;
      // And the session is that host's alone, whoever else sees its cookie (session-authenticator.ts).
      fresh.host = hostOf(authority(req))!;
    }
    fresh.tokens = storedTokens(tokens);
    fresh.createdAt = Date.now();
    await saveSession(fresh);
    await deps.backend.index(fresh.id, { sub: tokens.sub, ...(tokens.sid ? { sid: tokens.sid } : {}) });
    redirect(res, pending.returnTo);
  };

  /**
   * Sign-out is a POST from our own origin (or an allowed one): as a GET, any page
   * could sign a person out with an image tag. The GET shows a button that POSTs.
   */
  const signOutForm: Route = (_req, res) => formPage(res, 200, signOutPage(prefix));

  const signOut: Route = async (req, res) => {
    if (!isSameOrigin(req, config.allowedOrigins)) return formPage(res, 403, signOutRefusedPage(prefix));
    const sess = await session(req, res);
    const idToken = sess.tokens?.idToken;
    await destroySession(sess);
    const { name } = config.cookie;
    const domain = deps.hosts.hostOnly(authority(req)) ? '' : config.cookie.domain;
    appendSetCookie(res, serializeCookie(name, '', { path: '/', ...(domain ? { domain } : {}), expires: new Date(0), secure: true, httpOnly: true, sameSite: 'lax' }));
    const client = deps.client();
    const logout = client && endSessionUrl(client, idToken);
    if (logout) return redirect(res, logout.href);
    send(res, 200, 'text/html', signedOutPage(prefix));
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
    formPage(
      res,
      200,
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

  /**
   * HEAD only where GET has no side effect (the static files, the sign-out form):
   * Node answers HEAD by running the handler and dropping the body, and a HEAD must
   * never start a login, consume a callback, refresh a session or sign anyone out.
   */
  const readOnly = (route: Route) => ({ GET: route, HEAD: route });
  const routes = new Map<string, Partial<Record<Method, Route>>>([
    [`${prefix}/static/page.css`, readOnly((_req, res) => send(res, 200, 'text/css', PAGE_CSS))],
    [`${prefix}/static/page.js`, readOnly((_req, res) => send(res, 200, 'application/javascript', PAGE_JS))],
    [`${prefix}/start`, { GET: start }],
    [`${prefix}/callback`, { GET: callback }],
    [`${prefix}/sign_out`, { ...readOnly(signOutForm), POST: signOut }],
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
    const route = Object.hasOwn(methods, req.method ?? '') ? methods[req.method as Method] : undefined;
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
