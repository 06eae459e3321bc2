/**
 * Starts a proxy from a validated Config: the TLS listener, the health
 * listener, and the pipeline between them. Also the graceful stop.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { createAuditSink } from './audit/sink.js';
import { createJwtAuthenticator } from './authn/jwt/index.js';
import { authenticatorChain, clientCertificateFirst, type RequestAuthenticator, type TokenAuthenticator } from './authn/authenticator.js';
import { createBearerAuthenticator } from './authn/bearer-authenticator.js';
import { tokenAuthenticatorChain } from './authn/token-chain.js';
import { createReloadingJwtAuthenticator } from './authn/reloading-jwt.js';
import { createStaticTokenAuthenticator } from './authn/static-tokens.js';
import { createClientCertificateAuthenticator } from './authn/x509-authenticator.js';
import { configuredRoutes, type Config, type RouteConfig } from './config/schema.js';
import { forbiddenPage } from './login/pages.js';
import { createRouter, type RouteMatch } from './route/router.js';
import { createHealthServer } from './observe/health.js';
import { createLogger, type Logger } from './observe/logger.js';
import { createMetrics, type ProxyMetrics } from './observe/metrics.js';
import { createOpenRequests } from './open-requests.js';
import { createListener } from './listener.js';
import { listenOn } from './listen-on.js';
import { createPipeline, type RouteTarget } from './pipeline.js';
import { proxyErrors, statusBody, statusHeaders, type ProxyErrorCode } from './request/errors.js';
import { headerRules } from './proxy/request-headers.js';
import { rawResponse } from './request/respond.js';
import { Upstream } from './proxy/upstream.js';
import { readServingContext, watchFiles } from './tls/files.js';

/** How long a stop waits for closed requests to report (it takes a tick or two; this is a bound). */
const AUDIT_LINES_WAIT_MS = 2000;

export interface RunningProxy {
  /** https://host:port the proxy listens on. */
  readonly url: string;
  /** http://host:port of /healthz, /readyz and /metrics. */
  readonly healthURL: string;
  readonly metrics: ProxyMetrics;
  /** What is not ready yet (empty when ready). */
  notReady(): string[];
  /** Stops accepting, lets short requests finish within the grace period, then closes everything. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Serve /healthz, /readyz and /metrics on listen.healthAddress (a cluster worker leaves that to the primary). */
  readonly healthServer?: boolean;
  /** Who the caller is; default: the bearer token, then the session cookie (the benchmark's no-auth build injects its own). */
  readonly authenticate?: RequestAuthenticator;
  /** Where requests go; default: config.upstream (only for the top-level upstream, not routes). */
  readonly upstream?: Upstream;
}

export async function startProxy(
  config: Config,
  logger: Logger = createLogger(config.log.level),
  options: StartOptions = {},
): Promise<RunningProxy> {
  const { listen, authentication } = config;
  const metrics = createMetrics();
  const jwtOptions = { logger, cacheTTLms: authentication.tokenCacheTTL, cacheMaxEntries: authentication.tokenCacheMaxEntries };
  const tokens = authentication.configFile
    ? createReloadingJwtAuthenticator({ ...jwtOptions, file: authentication.configFile, session: authentication.session, metrics })
    : createJwtAuthenticator(authentication.jwt, jwtOptions);
  // Every other bearer token, in kube's order; each reads its files now.
  const others: TokenAuthenticator[] = [
    ...(authentication.staticTokenFile ? [await createStaticTokenAuthenticator(authentication.staticTokenFile, logger)] : []),
    // Features not configured are not loaded (dynamic imports): every worker would carry them idle.
    ...(authentication.webhook ? [await (await import('./authn/token-review/webhook.js')).createWebhookTokenAuthenticator(authentication.webhook, logger)] : []),
    ...(authentication.tokenReview ? [await (await import('./authn/token-review/token-review.js')).createTokenReviewAuthenticator(authentication.tokenReview, logger)] : []),
  ];
  const bearer = tokenAuthenticatorChain({ jwt: tokens, others, passthrough: authentication.passthrough });
  const servingContext = () => readServingContext(listen.tls.certFile, listen.tls.keyFile, listen.tls.clientCAFile);
  let serving = servingContext();
  const x509 = serving.clientCAs
    ? createClientCertificateAuthenticator({ clientCAs: () => serving.clientCAs!, refuseSystemGroups: authentication.x509.refuseSystemGroups, logger })
    : undefined;
  const open = createOpenRequests((kind, delta) =>
    delta > 0 ? metrics.longRunningOpened(kind) : metrics.longRunningClosed(kind),
  );
  const audit = createAuditSink(config.audit);
  // Browser login brings openid-client, express-session and the Redis client: about 14 MiB a process.
  const login = authentication.session ? await (await import('./login/index.js')).createLogin(config, tokens, logger) : undefined;
  const routes = configuredRoutes(config).map((route) => routeTarget(route, route.upstream === config.upstream ? options.upstream : undefined));
  function routeTarget(route: RouteConfig, given: Upstream | undefined): RouteTarget & RouteMatch {
    const upstream = given ?? new Upstream(route.upstream, logger);
    const rules = headerRules(
      route.upstream.identityHeaders,
      authentication.allowImpersonationHeaders,
      login?.cookieName,
      login && ((name) => login.ownsCookie(name)),
      route.upstream.identity,
    );
    return {
      ...(route.name !== undefined && { name: route.name }),
      ...(route.host !== undefined && { host: route.host }),
      pathPrefix: route.pathPrefix,
      public: route.public,
      ...(route.allow && { allow: route.allow }),
      rules: { ...rules, passAccessToken: route.upstream.passAccessToken },
      upstream,
      responseTimeout: route.upstream.responseTimeout,
      impersonationReview: {
        get pool() {
          return upstream.pool;
        },
        host: upstream.hostHeader,
        credentialHeaders: () => upstream.ownCredentialHeaders(),
        timeoutMs: route.upstream.responseTimeout,
      },
    };
  }
  const pipeline = createPipeline({
    // kube's order: the client certificate, the bearer token, then (ours) the session cookie.
    authenticate:
      options.authenticate ?? clientCertificateFirst(x509, authenticatorChain([createBearerAuthenticator(bearer), ...(login ? [login.authenticate] : [])])),
    route: createRouter(routes),
    strictPaths: config.routes !== undefined,
    forwardAuthPath: `${authentication.session?.pathPrefix ?? '/oauth2'}/auth`,
    ...(login && {
      login: {
        isLoginPath: login.isLoginPath,
        handle: (req, res) => login.routes(req, res),
        startURL: login.startURL,
        allowedOrigins: authentication.session?.allowedOrigins ?? [],
        forbiddenPage: (identity, route) => forbiddenPage(login.prefix, identity, route),
        accessToken: (req) => login.accessToken(req),
      },
    }),
    audit,
    metrics,
    logger,
    open,
  });

  const listener = createListener({
    ...serving,
    http2: listen.http2,
    maxConcurrentStreams: listen.http2MaxConcurrentStreams,
    maxHeaderBytes: listen.maxHeaderBytes,
    handshakeTimeout: listen.handshakeTimeout,
    headerTimeout: listen.headerTimeout,
    bodyTimeout: listen.bodyTimeout,
    keepAliveTimeout: listen.keepAliveTimeout,
  });
  const { server } = listener;
  server.on('request', pipeline.onRequest);
  // With a listener here Node no longer answers 100 Continue by itself: the pipeline does,
  // once the caller is authenticated, so an anonymous client is not invited to upload.
  server.on('checkContinue', pipeline.onRequest);
  server.on('upgrade', pipeline.onUpgrade);
  // CONNECT gets a Status and an audit line rather than a silent close. The HTTP/2 server
  // raises it too once it has a listener, with a response object instead of a socket.
  server.on('connect', (req: IncomingMessage | Http2ServerRequest, socketOrResponse: Duplex | Http2ServerResponse, head: Buffer) =>
    'stream' in req ? pipeline.onRequest(req, socketOrResponse as Http2ServerResponse) : pipeline.onUpgrade(req, socketOrResponse as Duplex, head),
  );
  server.on('clientError', answerClientError);

  const servingFiles = [listen.tls.certFile, listen.tls.keyFile, ...(listen.tls.clientCAFile ? [listen.tls.clientCAFile] : [])];
  const stopWatchingCert = watchFiles(servingFiles, () => {
    try {
      const next = servingContext();
      // The listener's own method: Node's server.setSecureContext forgets every option it is not given (the client CA).
      listener.setSecureContext(next);
      serving = next;
      logger.info('serving certificate reloaded');
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'serving certificate changed but cannot be loaded yet; keeping the old one');
    }
  });

  // JWT issuers hold readiness back only when they are the only way in: with client certificates or
  // another token authenticator, an identity provider that is down must not take the break-glass path down too.
  const otherWayIn = x509 !== undefined || others.length > 0 || authentication.passthrough;
  const notReady = () => [
    ...(bearer.ready() || otherWayIn ? [] : ['jwt issuers (discovery or keys not loaded yet)']),
    ...(login?.notReady() ?? []),
  ];
  const health = options.healthServer === false ? undefined : createHealthServer({ notReady }, metrics.registry);

  const url = `https://${await listenOn(server, listen.address)}`;
  const healthURL = health ? `http://${await listenOn(health, listen.healthAddress)}` : '';
  logger.info({ url, healthURL, upstreams: routes.map((r) => r.upstream.url.origin), identity: routes.map((r) => r.rules.mode) }, 'kube-front-proxy listening');
  for (const route of routes) {
    if (config.routes && !route.public && !route.allow) {
      logger.info({ route: route.name ?? `${route.host ?? '*'}${route.pathPrefix}` }, 'route without an allow rule: every authenticated caller may pass');
    }
  }

  let closing: Promise<void> | undefined;
  return {
    url,
    healthURL,
    metrics,
    notReady,
    close: () =>
      (closing ??= (async () => {
        stopWatchingCert();
        const stopped = listener.stop();
        await open.drained('short', listen.shutdownGracePeriod);
        open.closeAll();
        listener.destroyAll();
        await stopped;
        // Each closed request writes its audit line when its close event comes, which
        // may be after the listener has closed; the audit log must not close before.
        await open.drained('all', AUDIT_LINES_WAIT_MS);
        await Promise.all([...routes.map((r) => r.upstream.close()), bearer.close(), login?.close(), new Promise((resolve) => (health ? health.close(resolve) : resolve(undefined)))]);
        await audit.close();
        logger.info('kube-front-proxy stopped');
      })()),
  };
}

/** Malformed HTTP, oversized heads and slow clients get a Status, not a silent reset. */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const code: ProxyErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
  const requestId = randomUUID();
  const body = statusBody(code, requestId);
  socket.end(rawResponse(proxyErrors[code].status, statusHeaders(code, body, requestId), body));
}
