/**
 * The request path, stage by stage:
 *
 *   context → refuse methods and upgrades we do not forward → authenticate
 *     → hold the session cookie to its scope → refuse impersonation (or, in
 *     impersonation mode, authorize it) → rewrite headers → forward | tunnel → audit
 *
 * Ordinary requests and upgrades share every stage up to the last one, so an
 * upgrade can never skip a rule an ordinary request obeys.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RequestAuthenticator } from './authn/authenticator.js';
import type { AuditSink } from './audit/sink.js';
import { sessionRefusal } from './login/cookie-scope.js';
import type { Logger } from './observe/logger.js';
import type { ProxyMetrics } from './observe/metrics.js';
import { authority, type ClientRequest, type ClientResponse } from './request/client.js';
import { judgeFor } from './request/judged-host.js';
import { createContext, type RequestContext } from './request/context.js';
import type { ProxyErrorCode } from './request/errors.js';
import { forward } from './proxy/forward.js';
import { hasImpersonationHeaders, upstreamHeaders, type ForwardedFacts, type HeaderRules, type IdentityMode } from './proxy/request-headers.js';
import { impersonatedIdentity, readImpersonationRequest } from './authz/impersonation-request.js';
import { mayImpersonate, type ReviewTransport } from './authz/subject-access-review.js';
import type { Identity } from './request/identity.js';
import { requestBearerToken } from './authn/bearer-authenticator.js';
import type { AllowRule } from './config/schema.js';
import { checkRouteRule } from './authz/route-rules.js';
import { isRoutablePath, routingPath } from './route/router.js';
import { allowedGroupsParam, authRequestHeaders, envoyOriginalPath, isCrossSite, originalRequest, pinnedRoute } from './route/forward-auth.js';
import { applicationHeaderLines } from './proxy/identity-headers.js';
import { sendError, sendErrorOnSocket, sendPage } from './request/respond.js';
import { tunnel } from './proxy/tunnel.js';
import { methodRefusal, upgradeRefusal } from './proxy/upgrade.js';
import type { Upstream } from './proxy/upstream.js';
import { errorName } from './proxy/upstream-errors.js';
import type { OpenRequests } from './open-requests.js';

/** Browser login, when configured: its routes, and where a browser without credentials goes. */
export interface LoginStage {
  isLoginPath(path: string): boolean;
  handle(req: ClientRequest, res: ClientResponse): void;
  /** A signed-in browser a route's rule refuses: a page that says who they are and how to switch account. */
  forbiddenPage(identity: Identity, route: string | undefined): string;
  /** The session's access token from the provider, for passAccessToken (after the session authenticated the request). */
  accessToken(req: ClientRequest): string | undefined;
  /** The login URL for a browser on `authority` that returns to `target` (path and query) afterwards. */
  startURL(authority: string | undefined, target: string): string;
  /** Origins besides our own from which a cookie-authenticated upgrade or state change is accepted. */
  readonly allowedOrigins: readonly string[];
}

/** Where a matched request goes, and on what terms (one per route; the top-level upstream is one route for everything). */
export interface RouteTarget {
  /** For the audit line; undefined for the top-level upstream. */
  readonly name?: string;
  /** No login: forwarded with no identity, like a passed-through token. */
  readonly public: boolean;
  readonly allow?: AllowRule;
  readonly rules: HeaderRules;
  readonly upstream: Upstream;
  readonly responseTimeout: number;
  /** Impersonation mode: how the caller's own impersonation rights are asked about. */
  readonly impersonationReview: ReviewTransport;
}

export interface PipelineDeps {
  readonly authenticate: RequestAuthenticator;
  /**
   * The route for a host and path; undefined: none (404). With `strictPaths`
   * (the gateway's routes) a path an application could read as another route's
   * (dot segments, encoded slashes) is refused before matching.
   */
  readonly route: (host: string | undefined, path: string) => RouteTarget | undefined;
  readonly strictPaths: boolean;
  readonly audit: AuditSink;
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  readonly open: OpenRequests;
  readonly login?: LoginStage;
  /** Where forward-auth is answered (`<login prefix>/auth`, else /oauth2/auth). */
  readonly forwardAuthPath: string;
}

/**
 * kube-apiserver checks one right per impersonated user, group, uid and extra
 * value, in-process; each is a SubjectAccessReview for us. A cap keeps one
 * request from becoming hundreds of calls upstream.
 */
const MAX_IMPERSONATION_CHECKS = 64;

/** What an upstream 401 to an authenticated request means, per upstream.identity. */
const UPSTREAM_REFUSED_IDENTITY: Record<IdentityMode, string> = {
  requestheader:
    "the upstream answered 401 to an authenticated request: kube-apiserver does not accept the proxy's identity headers. " +
    "Check that upstream.clientCertFile is signed by its --requestheader-client-ca-file, that the certificate's CN is in " +
    '--requestheader-allowed-names, and that --requestheader-username-headers matches upstream.identityHeaders.user',
  impersonation:
    "the upstream answered 401 to an authenticated request: kube-apiserver does not accept the proxy's own credential. " +
    'Check that upstream.tokenFile (or the kubeconfig\'s token or client certificate) is current and issued by this cluster; ' +
    'a service-account token must be of an account that still exists',
  application: 'the upstream answered 401 to an authenticated request: the application does not accept the identity headers the proxy sends (X-Forwarded-User…)',
};

/** Invites the body of an `Expect: 100-continue` request: only once it is going somewhere. */
const continueIfAsked = (req: ClientRequest, res: ClientResponse) => {
  if (String(req.headers.expect ?? '').toLowerCase() === '100-continue') res.writeContinue();
};

const isHttp2 = (req: ClientRequest) => 'stream' in req;

/** A browser asking for a page: sent to log in rather than shown a 401. */
const wantsPage = (req: ClientRequest) =>
  (req.method === 'GET' || req.method === 'HEAD') && (req.headers.accept ?? '').includes('text/html');

/** Plain functions, not methods: the server registers them as its listeners. */
export interface Pipeline {
  readonly onRequest: (req: ClientRequest, res: ClientResponse) => void;
  /** Upgrades exist only in HTTP/1.1. */
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

export function createPipeline(deps: PipelineDeps): Pipeline {
  const { metrics, logger } = deps;

  /** The request's route, or the error to answer with (recorded in the context either way). */
  function routeOf(ctx: RequestContext): RouteTarget | ProxyErrorCode {
    if (deps.strictPaths && !isRoutablePath(ctx.path)) return 'BAD_REQUEST';
    const route = deps.route(ctx.host, deps.strictPaths ? routingPath(ctx.path) : ctx.path);
    if (!route) return 'ROUTE_NOT_FOUND';
    ctx.route = route.name;
    return route;
  }

  /** Authenticate and rewrite: the upstream header lines, or the error to answer with. */
  async function admit(req: ClientRequest, res: ClientResponse, ctx: RequestContext, route: RouteTarget, upgrade?: string): Promise<string[] | ProxyErrorCode> {
    // Before authentication: what we never forward costs nothing to refuse.
    const refusal = methodRefusal(ctx.method) ?? (upgrade === undefined ? undefined : upgradeRefusal(req));
    if (refusal) return refusal;
    const facts = { requestId: ctx.id, clientAddress: ctx.clientAddress, host: authority(req), proto: 'https' as const, upgrade };
    if (route.public) {
      // Nobody is named: the request goes on as a passed-through one would, credentials unread.
      ctx.authMethod = 'public';
      const result = upstreamHeaders(req.rawHeaders, undefined, facts, { ...route.rules, allowImpersonation: false, dropClientCredential: true });
      return result.ok ? result.headers : 'IDENTITY_NOT_REPRESENTABLE';
    }
    const outcome = await deps.authenticate(req, res);
    // HTTP/2 rapid reset (CVE-2023-44487): a stream's HEADERS and its RST_STREAM arrive in one
    // read, and a cached token authenticates before Node has handled the reset. One turn of the
    // event loop lets the reset land first, so the caller sees the client gone and opens nothing.
    if (isHttp2(req)) await new Promise((resolve) => setImmediate(resolve));
    if (outcome.kind === 'unavailable') return 'SESSION_STORE_UNAVAILABLE';
    if (outcome.kind === 'rejected' || outcome.kind === 'absent') {
      ctx.rejectReason = outcome.kind === 'rejected' ? outcome.reason : 'no_credentials';
      metrics.authFailure(ctx.rejectReason);
      return 'UNAUTHENTICATED';
    }
    // A passed-through token: kube-apiserver decides on the client's own credential; the proxy vouches for nothing.
    const identity = outcome.kind === 'authenticated' ? outcome.identity : undefined;
    // A token passed through names nobody: a route with a rule, or an application that reads
    // who the caller is from us, has no one to judge or name (only kube-apiserver reads such a token).
    if (!identity && (route.allow !== undefined || route.rules.mode === 'application')) {
      ctx.rejectReason = 'unknown_token';
      metrics.authFailure(ctx.rejectReason);
      return 'UNAUTHENTICATED';
    }
    ctx.identity = identity;
    ctx.authMethod = identity?.authMethod ?? 'passthrough';
    if (identity?.authMethod === 'session') {
      const outOfScope = sessionRefusal(req, ctx.path, upgrade !== undefined, deps.login?.allowedOrigins ?? []);
      if (outOfScope) return outOfScope;
    }
    if (identity) {
      const verdict = checkRouteRule(identity, route.allow);
      if (!verdict.allowed) {
        ctx.rule = verdict.rule;
        return 'ROUTE_FORBIDDEN';
      }
    }
    const { rules } = route;
    if (hasImpersonationHeaders(req.rawHeaders)) {
      if (!rules.allowImpersonation || rules.mode === 'application') return 'IMPERSONATION_FORBIDDEN';
      const asked = readImpersonationRequest(req.rawHeaders);
      if (asked.kind === 'invalid') return 'IMPERSONATION_INVALID';
      if (asked.kind === 'request') ctx.impersonatedUser = asked.target.username;
    }
    if (identity === undefined || rules.mode !== 'impersonation') {
      // kube-apiserver decides: on the client's own token, or on the identity we vouch for by requestheader.
      const accessToken = identity && rules.passAccessToken ? accessTokenOf(req, identity) : undefined;
      const result = upstreamHeaders(req.rawHeaders, identity, { ...facts, ...(accessToken && { accessToken }) }, rules);
      return result.ok ? result.headers : 'IDENTITY_NOT_REPRESENTABLE';
    }
    return impersonationHeaders(req, identity, facts, route);
  }

  /**
   * `<prefix>/auth`: forward-auth for an ingress that holds the request. 202
   * and who the caller is (X-Auth-Request-*) when the original URL's route
   * lets them in (no route: any authenticated caller); 401 without a
   * credential we vouch for, so the ingress sends the browser to sign in;
   * 403 when the route's rule (or `?allowed_groups=`) refuses. Never forwarded.
   */
  function forwardAuth(req: ClientRequest, res: ClientResponse, ctx: RequestContext, gone: () => boolean): void {
    const envoyPath = envoyOriginalPath(ctx.target, deps.forwardAuthPath);
    const original = originalRequest(req, envoyPath);
    const granted = envoyPath === undefined ? 202 : 200;
    // A path an application could read as another route's, or sources that disagree, are nobody's to allow (fail closed).
    if (!original || !isRoutablePath(original.path)) return sendError(res, ctx, 'BAD_REQUEST');
    const route = deps.route(original.host, routingPath(original.path));
    // With routes, a URL none of them serves is not ours to allow.
    if (!route && deps.strictPaths) return sendError(res, ctx, 'ROUTE_NOT_FOUND');
    ctx.route = route?.name;
    // The ingress said which route it fronts: a Host it let through that names another is refused.
    const pinned = pinnedRoute(req, ctx.target, envoyPath !== undefined);
    if (pinned !== undefined && route?.name !== pinned) {
      ctx.rule = 'route';
      return sendError(res, ctx, 'ROUTE_FORBIDDEN');
    }
    const allow = (status: number, headers: Record<string, string> = {}) => {
      ctx.status = status;
      res.writeHead(status, { ...headers, 'cache-control': 'no-store', 'content-length': '0', 'audit-id': ctx.id }).end();
    };
    if (route?.public) {
      ctx.authMethod = 'public';
      return allow(granted);
    }
    // A session bound to a host is judged for the host the ingress holds the request for.
    judgeFor(req, original.host);
    deps.authenticate(req, res).then(
      (outcome) => {
        if (gone()) return;
        if (outcome.kind === 'unavailable') return sendError(res, ctx, 'SESSION_STORE_UNAVAILABLE');
        if (outcome.kind !== 'authenticated') {
          // A token only kube-apiserver could judge is not one the proxy can vouch for to an ingress.
          ctx.rejectReason = outcome.kind === 'rejected' ? outcome.reason : outcome.kind === 'passthrough' ? 'unknown_token' : 'no_credentials';
          metrics.authFailure(ctx.rejectReason);
          return sendError(res, ctx, 'UNAUTHENTICATED');
        }
        const { identity } = outcome;
        ctx.identity = identity;
        ctx.authMethod = identity.authMethod;
        if (identity.authMethod === 'session' && isCrossSite(req, original, deps.login?.allowedOrigins ?? [], envoyPath !== undefined)) {
          return sendError(res, ctx, 'CROSS_SITE_REQUEST');
        }
        const verdict = checkRouteRule(identity, route?.allow);
        // Envoy's query is the original request's, not ours to read.
        const groups = envoyPath === undefined ? allowedGroupsParam(ctx.target) : undefined;
        const rule = !verdict.allowed ? verdict.rule : groups && !identity.groups.some((g) => groups.includes(g)) ? 'allowed_groups' : undefined;
        if (rule) {
          ctx.rule = rule;
          return sendError(res, ctx, 'ROUTE_FORBIDDEN');
        }
        const accessToken = route?.rules.passAccessToken ? accessTokenOf(req, identity) : undefined;
        const lines = applicationHeaderLines(identity, accessToken);
        if (!lines.ok) return sendError(res, ctx, 'IDENTITY_NOT_REPRESENTABLE');
        allow(granted, authRequestHeaders(lines.lines));
      },
      (err) => {
        internalError(ctx, err);
        sendError(res, ctx, 'INTERNAL');
      },
    );
  }

  /** The caller's access token: the very bearer token that authenticated them, or their session's. */
  function accessTokenOf(req: ClientRequest, identity: Identity): string | undefined {
    if (identity.authMethod === 'session') return deps.login?.accessToken(req);
    // A client certificate decided: a token beside it was never checked, so it is not theirs to pass on.
    if (identity.authMethod === 'x509') return undefined;
    return requestBearerToken(req) ?? undefined;
  }

  /**
   * Impersonation mode: the proxy asks as itself to act as the caller, or as
   * whom the caller asked to be, once kube-apiserver has said the caller may.
   * The proxy's own impersonation right never becomes the caller's.
   */
  async function impersonationHeaders(req: ClientRequest, identity: Identity, facts: ForwardedFacts, route: RouteTarget): Promise<string[] | ProxyErrorCode> {
    const asked = route.rules.allowImpersonation ? readImpersonationRequest(req.rawHeaders) : { kind: 'none' as const };
    let actAs: Identity | undefined;
    if (asked.kind === 'request') {
      if (asked.checks.length > MAX_IMPERSONATION_CHECKS) return 'IMPERSONATION_INVALID';
      const verdict = await mayImpersonate(identity, asked.checks, route.impersonationReview);
      if (!verdict.allowed) {
        logger.info({ user: identity.username, reason: verdict.reason }, 'impersonation refused');
        return 'IMPERSONATION_NOT_AUTHORIZED';
      }
      actAs = { ...asked.target, authMethod: identity.authMethod };
    } else {
      actAs = impersonatedIdentity(identity);
      if (!actAs) return 'IDENTITY_NOT_REPRESENTABLE';
    }
    const result = upstreamHeaders(req.rawHeaders, actAs, facts, route.rules);
    return result.ok ? [...result.headers, ...route.upstream.ownCredentialHeaders()] : 'IDENTITY_NOT_REPRESENTABLE';
  }

  let lastRefusalLog = 0;
  function finish(ctx: RequestContext): void {
    deps.audit.record(ctx);
    metrics.requestDone(ctx);
    // We forward only requests we authenticated, so an upstream 401 means it does not trust
    // our identity headers: a misconfiguration every user would otherwise see as a login loop.
    if (ctx.identity && ctx.upstreamStatus === 401) {
      metrics.upstreamError('UPSTREAM_REFUSED_IDENTITY');
      if (Date.now() - lastRefusalLog > 10_000) {
        lastRefusalLog = Date.now();
        logger.error({ requestId: ctx.id, route: ctx.route }, UPSTREAM_REFUSED_IDENTITY[ctx.identityMode ?? 'requestheader']);
      }
    }
  }

  const upstreamFailed = (ctx: RequestContext, err: Error) => {
    metrics.upstreamError(errorName(err));
    logger.warn({ requestId: ctx.id, err: err.message, code: errorName(err) }, 'upstream request failed');
  };

  const internalError = (ctx: RequestContext, err: unknown) =>
    logger.error({ requestId: ctx.id, err }, 'bug: request failed unexpectedly');

  return {
    onRequest(req, res) {
      const ctx = createContext(req, false);
      const untrack = deps.open.track(ctx.kind, () => res.destroy());
      let clientGone = false;
      res.once('close', () => {
        clientGone = !res.writableEnded;
        untrack();
        // nginx's 499: the client went away before we answered.
        ctx.status ??= res.headersSent ? res.statusCode : 499;
        finish(ctx);
      });
      // A target that is not a path (OPTIONS *, another host's URL) is refused before anything reads it.
      if (ctx.badTarget) return sendError(res, ctx, 'BAD_REQUEST');
      if (ctx.path === deps.forwardAuthPath || ctx.path.startsWith(`${deps.forwardAuthPath}/`)) return forwardAuth(req, res, ctx, () => clientGone);
      const login = deps.login;
      if (login?.isLoginPath(ctx.path)) {
        continueIfAsked(req, res);
        return login.handle(req, res);
      }
      const route = routeOf(ctx);
      if (typeof route === 'string') return sendError(res, ctx, route);
      ctx.identityMode = route.rules.mode;
      admit(req, res, ctx, route).then(
        (result) => {
          // A client that went away while we authenticated gets nothing opened upstream for it.
          if (clientGone) return;
          if (result === 'UNAUTHENTICATED' && login && wantsPage(req)) {
            ctx.status = 302;
            return void res.writeHead(302, { location: login.startURL(authority(req), ctx.target), 'cache-control': 'no-store' }).end();
          }
          if (result === 'ROUTE_FORBIDDEN' && login && ctx.identity && wantsPage(req)) {
            return sendPage(res, ctx, 403, login.forbiddenPage(ctx.identity, route.name));
          }
          if (typeof result === 'string') return sendError(res, ctx, result);
          continueIfAsked(req, res);
          const unvouched = ctx.authMethod === 'passthrough' || ctx.authMethod === 'public';
          const pool = route.upstream.dispatcherFor(ctx.kind, !unvouched);
          forward(req, res, ctx, result, pool, {
            responseTimeout: route.responseTimeout,
            ownsCookie: route.rules.ownsCookie,
            onError: (code, err) => {
              upstreamFailed(ctx, err);
              sendError(res, ctx, code);
            },
          });
        },
        (err) => {
          internalError(ctx, err);
          sendError(res, ctx, 'INTERNAL');
        },
      );
    },

    onUpgrade(req, socket, head) {
      const ctx = createContext(req, true);
      const untrack = deps.open.track(ctx.kind, () => socket.destroy());
      let finished = false;
      let tunnelling = false;
      const done = () => {
        if (finished) return;
        finished = true;
        untrack();
        ctx.status ??= 499;
        finish(ctx);
      };
      socket.on('error', () => socket.destroy());
      socket.once('close', () => {
        if (!tunnelling) done();
      });
      if (ctx.badTarget) return sendErrorOnSocket(socket, ctx, 'BAD_REQUEST');
      const route = routeOf(ctx);
      if (typeof route === 'string') return sendErrorOnSocket(socket, ctx, route);
      ctx.identityMode = route.rules.mode;
      // Upgrades have no response object; the session layer gets a detached one (nothing is written to it).
      admit(req, new ServerResponse(req), ctx, route, req.headers.upgrade).then(
        (result) => {
          if (typeof result === 'string') return sendErrorOnSocket(socket, ctx, result);
          tunnelling = true;
          tunnel(socket, head, ctx, result, route.upstream, {
            clientCertificate: ctx.authMethod !== 'passthrough' && ctx.authMethod !== 'public',
            responseTimeout: route.responseTimeout,
            ownsCookie: route.rules.ownsCookie,
            onError: (code, err) => {
              upstreamFailed(ctx, err);
              sendErrorOnSocket(socket, ctx, code);
            },
            onClose: done,
          });
        },
        (err) => {
          internalError(ctx, err);
          sendErrorOnSocket(socket, ctx, 'INTERNAL');
        },
      );
    },
  };
}
