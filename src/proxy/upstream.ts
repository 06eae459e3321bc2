/**
 * The connection to kube-apiserver: a keep-alive undici pool for ordinary
 * requests and watches, raw TLS sockets for upgrade tunnels, both with the
 * proxy's own client certificate. When the certificate files change, new
 * requests use a new pool; the old one closes once its requests (including
 * open watches) are done, so nothing in flight is cut.
 */
import { readFileSync } from 'node:fs';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, createSecureContext, type ConnectionOptions } from 'node:tls';
import { Pool } from 'undici';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { readKeyPair, watchFiles } from '../tls/files.js';

type UpstreamConfig = Config['upstream'];

export class Upstream {
  readonly url: URL;
  readonly secure: boolean;
  readonly hostHeader: string;
  /** The URL's host without IPv6 brackets, as sockets and SNI want it. */
  readonly #host: string;
  #tls: ConnectionOptions = {};
  /** The last TLS session ticket from the upstream, for tunnels to resume. */
  #tlsSession: Buffer | undefined;
  #pool: Pool;
  #stopWatching: () => void = () => {};

  constructor(
    private readonly config: UpstreamConfig,
    private readonly logger: Logger,
  ) {
    this.url = new URL(config.url);
    this.secure = this.url.protocol === 'https:';
    this.hostHeader = this.url.host;
    this.#host = this.url.hostname.replace(/^\[|\]$/g, '');
    this.#tls = this.#loadTls();
    this.#pool = this.#newPool();
    const files = [config.caFile, config.clientCertFile, config.clientKeyFile].filter((f): f is string => !!f);
    if (this.secure && files.length) this.#stopWatching = watchFiles(files, () => this.#reload());
  }

  /** The dispatcher for ordinary requests and watches. */
  get pool(): Pool {
    return this.#pool;
  }

  /**
   * A fresh connection for an upgrade tunnel (not pooled: it becomes the tunnel).
   * It resumes the last TLS session the upstream gave us: a full handshake with
   * client certificate costs several milliseconds of CPU on both sides, for every
   * exec and port-forward.
   */
  connect(): Socket {
    const port = Number(this.url.port || (this.secure ? 443 : 80));
    const host = this.#host;
    // Nagle off, as undici does for its connections: tunnels carry small interactive frames.
    if (!this.secure) return netConnect({ host, port, noDelay: true });
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
    await this.#pool.destroy();
  }

  #loadTls(): ConnectionOptions {
    const { caFile, clientCertFile, clientKeyFile, serverName } = this.config;
    const host = this.#host;
    const options: ConnectionOptions = {};
    if (caFile) options.ca = readFileSync(caFile);
    if (clientCertFile && clientKeyFile) Object.assign(options, readKeyPair(clientCertFile, clientKeyFile));
    // One OpenSSL context (CA store, client certificate, key) for every connection: given only
    // ca/cert/key, tls.connect builds a context per connection, about 29 KiB of native memory
    // held for as long as the connection (a watch) lives, and parses the key again each time.
    options.secureContext = createSecureContext(options);
    // SNI must not carry an IP address; the certificate is still checked against it.
    const name = serverName ?? (isIP(host) ? undefined : host);
    if (name) options.servername = name;
    if (serverName) options.checkServerIdentity = (_host, cert) => checkServerIdentity(serverName, cert);
    return options;
  }

  #newPool(): Pool {
    return new Pool(this.url.origin, {
      connections: this.config.connections ?? null,
      keepAliveTimeout: 30_000,
      connect: this.secure ? { ...this.#tls } : undefined,
    });
  }

  #reload(): void {
    try {
      this.#tls = this.#loadTls();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'upstream client certificate changed but cannot be loaded yet; keeping the old one');
      return;
    }
    // A resumed session keeps the identity of its first handshake: the old certificate.
    this.#tlsSession = undefined;
    const old = this.#pool;
    this.#pool = this.#newPool();
    this.logger.info('upstream client certificate reloaded');
    old.close().catch(() => {});
  }
}
