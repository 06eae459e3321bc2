/**
 * The request path, stage by stage:
 *
 *   context → refuse methods and upgrades we do not forward → authenticate
 *     → hold the session cookie to its scope → refuse impersonation
 *     → rewrite headers → forward | tunnel → audit
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
import { createContext, type RequestContext } from './request/context.js';
import type { ProxyErrorCode } from './request/errors.js';
import { forward } from './proxy/forward.js';
import { hasImpersonationHeaders, upstreamHeaders, type HeaderRules } from './proxy/request-headers.js';
import { sendError, sendErrorOnSocket } from './request/respond.js';
import { tunnel } from './proxy/tunnel.js';
import { methodRefusal, upgradeRefusal } from './proxy/upgrade.js';
import type { Upstream } from './proxy/upstream.js';
import { errorName } from './proxy/upstream-errors.js';
import type { OpenRequests } from './open-requests.js';

/** Browser login, when configured: its routes, and where a browser without credentials goes. */
export interface LoginStage {
  isLoginPath(path: string): boolean;
  handle(req: ClientRequest, res: ClientResponse): void;
  /** The login URL that returns to `target` afterwards. */
  startURL(target: string): string;
  /** Origins besides our own from which a cookie-authenticated upgrade or state change is accepted. */
  readonly allowedOrigins: readonly string[];
}

export interface PipelineDeps {
  readonly authenticate: RequestAuthenticator;
  readonly rules: HeaderRules;
  readonly upstream: Upstream;
  readonly responseTimeout: number;
  readonly audit: AuditSink;
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  readonly open: OpenRequests;
  readonly login?: LoginStage;
}

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

  /** Authenticate and rewrite: the upstream header lines, or the error to answer with. */
  async function admit(req: ClientRequest, res: ClientResponse, ctx: RequestContext, upgrade?: string): Promise<string[] | ProxyErrorCode> {
    // Before authentication: what we never forward costs nothing to refuse.
    const refusal = methodRefusal(ctx.method) ?? (upgrade === undefined ? undefined : upgradeRefusal(req));
    if (refusal) return refusal;
    const outcome = await deps.authenticate(req, res);
    // HTTP/2 rapid reset (CVE-2023-44487): a stream's HEADERS and its RST_STREAM arrive in one
    // read, and a cached token authenticates before Node has handled the reset. One turn of the
    // event loop lets the reset land first, so the caller sees the client gone and opens nothing.
    if (isHttp2(req)) await new Promise((resolve) => setImmediate(resolve));
    if (outcome.kind === 'unavailable') return 'SESSION_STORE_UNAVAILABLE';
    if (outcome.kind !== 'authenticated') {
      ctx.rejectReason = outcome.kind === 'rejected' ? outcome.reason : 'no_credentials';
      metrics.authFailure(ctx.rejectReason);
      return 'UNAUTHENTICATED';
    }
    ctx.identity = outcome.identity;
    if (outcome.identity.authMethod === 'session') {
      const outOfScope = sessionRefusal(req, ctx.path, upgrade !== undefined, deps.login?.allowedOrigins ?? []);
      if (outOfScope) return outOfScope;
    }
    if (!deps.rules.allowImpersonation && hasImpersonationHeaders(req.rawHeaders)) return 'IMPERSONATION_FORBIDDEN';
    const facts = { requestId: ctx.id, clientAddress: ctx.clientAddress, host: authority(req), proto: 'https' as const, upgrade };
    const result = upstreamHeaders(req.rawHeaders, outcome.identity, facts, deps.rules);
    return result.ok ? result.headers : 'IDENTITY_NOT_REPRESENTABLE';
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
        logger.error(
          { requestId: ctx.id },
          'the upstream answered 401 to an authenticated request: kube-apiserver does not accept the proxy\'s identity headers. ' +
            'Check that upstream.clientCertFile is signed by its --requestheader-client-ca-file, that the certificate\'s CN is in ' +
            '--requestheader-allowed-names, and that --requestheader-username-headers matches upstream.identityHeaders.user',
        );
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
      const login = deps.login;
      if (login?.isLoginPath(ctx.path)) {
        continueIfAsked(req, res);
        return login.handle(req, res);
      }
      admit(req, res, ctx).then(
        (result) => {
          // A client that went away while we authenticated gets nothing opened upstream for it.
          if (clientGone) return;
          if (result === 'UNAUTHENTICATED' && login && wantsPage(req)) {
            ctx.status = 302;
            return void res.writeHead(302, { location: login.startURL(ctx.target), 'cache-control': 'no-store' }).end();
          }
          if (typeof result === 'string') return sendError(res, ctx, result);
          continueIfAsked(req, res);
          forward(req, res, ctx, result, deps.upstream.pool, {
            responseTimeout: deps.responseTimeout,
            ownsCookie: deps.rules.ownsCookie,
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
      // Upgrades have no response object; the session layer gets a detached one (nothing is written to it).
      admit(req, new ServerResponse(req), ctx, req.headers.upgrade).then(
        (result) => {
          if (typeof result === 'string') return sendErrorOnSocket(socket, ctx, result);
          tunnelling = true;
          tunnel(socket, head, ctx, result, deps.upstream, {
            responseTimeout: deps.responseTimeout,
            ownsCookie: deps.rules.ownsCookie,
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
