/**
 * The connection to kube-apiserver: a keep-alive undici pool for short
 * requests; for watches and other long-running requests, HTTP/2 streams of a
 * few shared connections when the upstream speaks h2 (upstream.http2: auto),
 * else the same pool; raw TLS sockets for upgrade tunnels; all with the
 * proxy's own client certificate (upstream-endpoint.ts reads where and with
 * what, from the upstream keys or a kubeconfig). When the certificate files change, new
 * requests use a new pool; the old one closes once its requests (including
 * open watches) are done, so nothing in flight is cut.
 *
 * In impersonation mode the proxy may instead (or also) prove who it is with
 * a bearer token: ownCredentialHeaders() gives the Authorization line, read
 * from tokenFile (or the kubeconfig) again whenever the file changes, as the
 * kubelet rotates a projected service-account token.
 *
 * A token passed through for kube-apiserver to decide travels without the
 * proxy's certificate, in a pool of its own: with it, kube-apiserver's x509
 * authenticator could take the proxy's certificate for the caller (when the
 * front-proxy CA is also its --client-ca-file) and the token would not matter.
 */
import { readFileSync } from 'node:fs';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, createSecureContext, type ConnectionOptions } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import type { RequestKind } from '../request/long-running.js';
import { watchFiles } from '../tls/files.js';
import { Http2Upstream } from './http2-upstream.js';
import { readUpstreamEndpoint, type UpstreamEndpoint } from './upstream-endpoint.js';

/**
 * Short requests go over HTTP/1.1 even when the upstream speaks h2: node:http2 costs about
 * 100 µs more CPU a request than undici's pool here (bench scenario 1, both in one run), and
 * what HTTP/2 saves, a connection per open watch, only long-running requests hold.
 */
interface Pools {
  readonly short: Dispatcher;
  readonly streaming: Dispatcher;
}

export class Upstream {
  readonly url: URL;
  readonly secure: boolean;
  readonly hostHeader: string;
  /** The URL's host without IPv6 brackets, as sockets and SNI want it. */
  readonly #host: string;
  #tls: ConnectionOptions = {};
  /** The same TLS settings without the client certificate (passthrough). */
  #tlsWithoutCertificate: ConnectionOptions = {};
  /** The last TLS session ticket from the upstream, for tunnels to resume. */
  #tlsSession: Buffer | undefined;
  #pools: Pools;
  /** The proxy's own bearer token upstream (impersonation mode), if its credential is a token. */
  #bearer: string | undefined;
  #passthroughPools: Pools | undefined;
  #stopWatching: () => void = () => {};

  private readonly config: UpstreamConfig;

  constructor(
    // http2 may be left out by configs built in code: auto, the schema's default.
    config: Omit<UpstreamConfig, 'http2'> & Partial<Pick<UpstreamConfig, 'http2'>>,
    private readonly logger: Logger,
  ) {
    this.config = { ...config, http2: config.http2 ?? 'auto' };
    const endpoint = readUpstreamEndpoint(this.config);
    this.url = endpoint.url;
    this.secure = this.url.protocol === 'https:';
    this.hostHeader = this.url.host;
    this.#host = this.url.hostname.replace(/^\[|\]$/g, '');
    [this.#tls, this.#tlsWithoutCertificate] = this.#loadTls(endpoint);
    this.#bearer = bearerOf(endpoint);
    this.#pools = this.#newPools(this.#tls);
    const stopTls = this.secure && endpoint.tlsFiles.length ? watchFiles(endpoint.tlsFiles, () => this.#reload()) : () => {};
    this.#watchToken(endpoint.tokenFile);
    this.#stopWatching = () => {
      stopTls();
      this.#stopWatchingToken();
    };
  }

  #stopWatchingToken: () => void = () => {};
  #tokenFile: string | undefined;

  /** Follows `file` as it rotates; a reloaded kubeconfig may name another file, or none. */
  #watchToken(file: string | undefined): void {
    if (file === this.#tokenFile) return;
    this.#stopWatchingToken();
    this.#tokenFile = file;
    this.#stopWatchingToken = file === undefined ? () => {} : watchFiles([file], () => this.#reloadToken());
  }

  /**
   * The header lines by which the proxy authenticates as itself, for requests
   * it makes on its own authority (everything but a passed-through token): an
   * Authorization line when its credential is a token, else none (the client
   * certificate is in the connection).
   */
  ownCredentialHeaders(): string[] {
    return this.#bearer === undefined ? [] : ['Authorization', `Bearer ${this.#bearer}`];
  }

  /** The dispatcher for watches and other long-running requests (HTTP/2 or HTTP/1.1, upstream.http2); callback-API callers and upgrades reach its HTTP/1.1 pool. */
  get pool(): Dispatcher {
    return this.#pools.streaming;
  }

  /**
   * Where a request of this kind goes: short ones to the HTTP/1.1 pool, long-running ones to
   * HTTP/2 when it is on; passed-through tokens to pools of their own, without the proxy's
   * client certificate.
   */
  dispatcherFor(kind: RequestKind, withClientCertificate = true): Dispatcher {
    const pools = withClientCertificate ? this.#pools : this.#passthrough();
    return kind === 'short' ? pools.short : pools.streaming;
  }

  #passthrough(): Pools {
    return (this.#passthroughPools ??= this.#newPools(this.#tlsWithoutCertificate));
  }

  /**
   * A fresh connection for an upgrade tunnel (not pooled: it becomes the tunnel).
   * It resumes the last TLS session the upstream gave us: a full handshake with
   * client certificate costs several milliseconds of CPU on both sides, for every
   * exec and port-forward.
   */
  connect(withClientCertificate = true): Socket {
    const port = Number(this.url.port || (this.secure ? 443 : 80));
    const host = this.#host;
    // Nagle off, as undici does for its connections: tunnels carry small interactive frames.
    if (!this.secure) return netConnect({ host, port, noDelay: true });
    if (!withClientCertificate) {
      const socket = tlsConnect({ ...this.#tlsWithoutCertificate, host, port, ALPNProtocols: ['http/1.1'] });
      socket.setNoDelay(true);
      return socket;
    }
    const socket = tlsConnect({ ...this.#tls, host, port, ALPNProtocols: ['http/1.1'], ...(this.#tlsSession && { session: this.#tlsSession }) });
    socket.setNoDelay(true); // (tls.connect does not pass a noDelay option on)
    const tls = this.#tls;
    socket.on('session', (session: Buffer) => {
      // A session made with certificates since replaced must not be resumed.
      if (this.#tls === tls) this.#tlsSession = session;
    });
    return socket;
  }

  /** Called after every client connection is closed: whatever is still open upstream is orphaned. */
  async close(): Promise<void> {
    this.#stopWatching();
    // The streaming dispatcher destroys its HTTP/1.1 fallback, the short pool, with it.
    await Promise.all([this.#pools.streaming.destroy(), this.#passthroughPools?.streaming.destroy()]);
  }

  /** The TLS settings with the client certificate, and the same without it. */
  #loadTls(endpoint: UpstreamEndpoint): [ConnectionOptions, ConnectionOptions] {
    const { ca, clientCert, clientKey, serverName } = endpoint;
    const host = this.#host;
    const common: ConnectionOptions = {};
    if (ca) common.ca = ca;
    // SNI must not carry an IP address; the certificate is still checked against it.
    const name = serverName ?? (isIP(host) ? undefined : host);
    if (name) common.servername = name;
    if (serverName) common.checkServerIdentity = (_host, cert) => checkServerIdentity(serverName, cert);
    const keyPair = clientCert && clientKey ? { cert: clientCert, key: clientKey } : {};
    // One OpenSSL context (CA store, client certificate, key) for every connection: given only
    // ca/cert/key, tls.connect builds a context per connection, about 29 KiB of native memory
    // held for as long as the connection (a watch) lives, and parses the key again each time.
    const contextOf = (options: ConnectionOptions): ConnectionOptions => ({
      ...common,
      secureContext: createSecureContext({ ca: common.ca, ...options }),
    });
    return [contextOf(keyPair), contextOf({})];
  }

  #newPools(tls: ConnectionOptions): Pools {
    const http1 = new Pool(this.url.origin, {
      connections: this.config.connections ?? null,
      keepAliveTimeout: 30_000,
      connect: this.secure ? { ...tls } : undefined,
    });
    // Without TLS there is no ALPN to ask: HTTP/1.1.
    if (this.config.http2 !== 'auto' || !this.secure) return { short: http1, streaming: http1 };
    const streaming = new Http2Upstream({
      tls: { ...tls, host: this.#host, port: Number(this.url.port || 443) },
      fallback: http1,
      ...(this.config.connections !== undefined && { maxConnections: this.config.connections }),
      idleTimeout: 30_000,
      onHttp1: (alpn) => this.logger.info({ alpn: alpn || 'none' }, 'the upstream did not choose h2 by ALPN: using HTTP/1.1 (upstream.http2: off says so up front)'),
      debug: (fields, message) => this.logger.debug(fields, message),
    });
    return { short: http1, streaming };
  }

  #reload(): void {
    try {
      const endpoint = readUpstreamEndpoint(this.config);
      // Pools are per origin: a kubeconfig that now names another server needs a restart.
      if (endpoint.url.origin !== this.url.origin) throw new Error(`the server changed to ${endpoint.url.origin}; restart to follow it`);
      [this.#tls, this.#tlsWithoutCertificate] = this.#loadTls(endpoint);
      this.#bearer = bearerOf(endpoint);
      this.#watchToken(endpoint.tokenFile);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'upstream client certificate changed but cannot be loaded yet; keeping the old one');
      return;
    }
    // A resumed session keeps the identity of its first handshake: the old certificate.
    this.#tlsSession = undefined;
    const old = this.#pools;
    this.#pools = this.#newPools(this.#tls);
    // The CA may have changed too: passed-through requests get new pools as well.
    const oldPassthrough = this.#passthroughPools;
    this.#passthroughPools = undefined;
    oldPassthrough?.streaming.close().catch(() => {});
    this.logger.info('upstream client certificate reloaded');
    // (closing the streaming dispatcher closes its fallback, the short pool, too)
    old.streaming.close().catch(() => {});
  }

  /** The token file changed (the kubelet rotated it): new requests present the new token. */
  #reloadToken(): void {
    try {
      this.#bearer = bearerOf(readUpstreamEndpoint(this.config));
      this.logger.info('upstream token reloaded');
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'upstream token file changed but cannot be read; keeping the old token');
    }
  }
}

/** The token an endpoint presents, read now; undefined when its credential is a certificate. */
function bearerOf(endpoint: UpstreamEndpoint): string | undefined {
  if (endpoint.token !== undefined) return endpoint.token;
  if (endpoint.tokenFile === undefined) return undefined;
  const token = readFileSync(endpoint.tokenFile, 'utf8').trim();
  if (token === '') throw new Error(`${endpoint.tokenFile} is empty`);
  return token;
}
