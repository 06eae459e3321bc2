/**
 * Starts a proxy from a validated Config: the TLS listener, the health
 * listener, and the pipeline between them. Also the graceful stop.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Server as TlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createAuditSink } from './audit/sink.js';
import { createJwtAuthenticator } from './authn/jwt/index.js';
import { authenticatorChain, type RequestAuthenticator } from './authn/authenticator.js';
import { createBearerAuthenticator } from './authn/bearer-authenticator.js';
import { createLogin } from './login/index.js';
import type { Config } from './config/schema.js';
import { createHealthServer } from './observe/health.js';
import { createLogger, type Logger } from './observe/logger.js';
import { createMetrics, type ProxyMetrics } from './observe/metrics.js';
import { createOpenRequests } from './open-requests.js';
import { createListener } from './listener.js';
import { createPipeline } from './pipeline.js';
import { proxyErrors, statusBody, statusHeaders, type ProxyErrorCode } from './request/errors.js';
import { headerRules } from './proxy/request-headers.js';
import { rawResponse } from './request/respond.js';
import { Upstream } from './proxy/upstream.js';
import { readKeyPair, watchFiles } from './tls/files.js';

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
  /** Where requests go; default: config.upstream. */
  readonly upstream?: Upstream;
}

export async function startProxy(
  config: Config,
  logger: Logger = createLogger(config.log.level),
  options: StartOptions = {},
): Promise<RunningProxy> {
  const { listen } = config;
  const tokens = createJwtAuthenticator(config.authentication.jwt, {
    logger,
    cacheTTLms: config.authentication.tokenCacheTTL,
    cacheMaxEntries: config.authentication.tokenCacheMaxEntries,
  });
  const metrics = createMetrics();
  const open = createOpenRequests((kind, delta) =>
    delta > 0 ? metrics.longRunningOpened(kind) : metrics.longRunningClosed(kind),
  );
  const upstream = options.upstream ?? new Upstream(config.upstream, logger);
  const audit = createAuditSink(config.audit);
  const login = config.authentication.session ? await createLogin(config, tokens, logger) : undefined;
  const pipeline = createPipeline({
    // kube's order: the bearer token first, then the session cookie.
    authenticate: options.authenticate ?? authenticatorChain([createBearerAuthenticator(tokens), ...(login ? [login.authenticate] : [])]),
    rules: headerRules(config.upstream.identityHeaders, config.authentication.allowImpersonationHeaders, login?.cookieName, login && ((name) => login.ownsCookie(name))),
    ...(login && {
      login: {
        isLoginPath: login.isLoginPath,
        handle: (req, res) => login.routes(req, res),
        startURL: (target) => `${login.prefix}/start?rd=${encodeURIComponent(target)}`,
        allowedOrigins: config.authentication.session?.allowedOrigins ?? [],
      },
    }),
    upstream,
    responseTimeout: config.upstream.responseTimeout,
    audit,
    metrics,
    logger,
    open,
  });

  const listener = createListener({
    ...readKeyPair(listen.tls.certFile, listen.tls.keyFile),
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

  const stopWatchingCert = watchFiles([listen.tls.certFile, listen.tls.keyFile], () => {
    try {
      server.setSecureContext(readKeyPair(listen.tls.certFile, listen.tls.keyFile));
      logger.info('serving certificate reloaded');
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'serving certificate changed but cannot be loaded yet; keeping the old one');
    }
  });

  const notReady = () => [...(tokens.ready() ? [] : ['jwt issuers (discovery or keys not loaded yet)']), ...(login?.notReady() ?? [])];
  const health = options.healthServer === false ? undefined : createHealthServer({ notReady }, metrics.registry);

  const url = `https://${await listenOn(server, listen.address)}`;
  const healthURL = health ? `http://${await listenOn(health, listen.healthAddress)}` : '';
  logger.info({ url, healthURL, upstream: config.upstream.url }, 'kube-front-proxy listening');

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
        await Promise.all([upstream.close(), tokens.close(), login?.close(), new Promise((resolve) => (health ? health.close(resolve) : resolve(undefined)))]);
        await audit.close();
        logger.info('kube-front-proxy stopped');
      })()),
  };
}

/** Listens on "host:port" and returns the bound "host:port" (port 0 resolved). */
export async function listenOn(server: TlsServer | HttpServer, address: string): Promise<string> {
  const split = address.lastIndexOf(':');
  const host = address.slice(0, split).replace(/^\[|\]$/g, '');
  server.listen(Number(address.slice(split + 1)), host || undefined);
  await once(server, 'listening');
  const bound = server.address() as AddressInfo;
  return bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
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
