/**
 * The dev upstream: an HTTPS server that authenticates callers exactly like
 * kube-apiserver's requestheader authenticator and answers like a small API
 * server, so the proxy can be tested (and demonstrated) without a cluster.
 * It records every request it sees, so tests can check what was forwarded.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import * as kube from './kube-objects.js';
import {
  authenticateRequestHeader,
  headerLines,
  kubeadmRequestHeader,
  type RequestHeaderConfig,
  type UserInfo,
} from './requestheader.js';

export type { UserInfo } from './requestheader.js';

/** How to start the dev upstream. */
export interface DevUpstreamOptions {
  /** PEM serving certificate and key. */
  readonly tls: { readonly cert: string; readonly key: string };
  /** PEM CA(s) of `--requestheader-client-ca-file`. */
  readonly clientCA: string;
  /** `--requestheader-allowed-names`; default `['front-proxy-client']`, `[]` means any CN. */
  readonly allowedNames?: readonly string[];
  /** The `--requestheader-*-headers` flags; defaults are kubeadm's X-Remote-* headers. */
  readonly headers?: Partial<Pick<RequestHeaderConfig, 'user' | 'group' | 'extraPrefix' | 'uid'>>;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port). */
  readonly port?: number;
  /** How many requests `seen` keeps (the oldest go first), so benchmarks do not grow it forever. Default 10,000. */
  readonly maxSeen?: number;
}

/** One request (or upgrade) as the upstream received it. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  /** Who the requestheader authenticator says the caller is; null when not authenticated. */
  readonly user: UserInfo | null;
  /** Node's raw header list: name, value, name, value… (values as latin1 strings). */
  readonly rawHeaders: readonly string[];
  /** The request's Audit-ID header, if it had one. */
  readonly auditId: string | undefined;
  /** The Upgrade header of an upgrade request. */
  readonly upgrade?: string;
}

/** The `type` of a Kubernetes watch event. */
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** A running dev upstream. */
export interface DevUpstream {
  /** `https://host:port`. */
  readonly url: string;
  readonly port: number;
  /** Every request received, oldest first (up to `maxSeen`). */
  readonly seen: SeenRequest[];
  /**
   * Sends a watch event to every open pod watch of `namespace` (and of all
   * namespaces). The object defaults to a pod named demo-0. Returns how many
   * watches it reached, so a test can tell whether its watch is open yet.
   */
  emitPodEvent(namespace: string, type: WatchEventType, object?: object): number;
  /**
   * What a workload behind kube-apiserver's proxy subresources serves: an
   * authenticated `GET` under `…/pods/<name>/proxy`, `…/services/<name>/proxy`
   * or `/api/v1/nodes/<name>/proxy` is answered with this HTML, as the API
   * server relays a pod's own page. Undefined (the default): 404 like any unknown path.
   */
  serveProxiedPage(html: string | undefined): void;
  /** Ends watches and tunnels, closes every connection, stops listening. */
  close(): Promise<void>;
}

/** Byte `i` of `/debug/bytes` is `i % 251`: a prime, so a lost or repeated chunk shows. */
export const PATTERN_MODULUS = 251;

/** The bytes `/debug/bytes` serves from `offset` on, for tests to compare with. */
export function patternBytes(offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (offset + i) % PATTERN_MODULUS;
  return out;
}

/** 261 whole periods: every chunk of the stream can be this same buffer. */
const PATTERN_CHUNK = patternBytes(0, PATTERN_MODULUS * 261);
const MAX_DEBUG_BYTES = 2 ** 32;

async function* patternStream(n: number): AsyncGenerator<Buffer> {
  for (let sent = 0; sent < n; sent += PATTERN_CHUNK.length) {
    yield n - sent >= PATTERN_CHUNK.length ? PATTERN_CHUNK : PATTERN_CHUNK.subarray(0, n - sent);
  }
}

const PODS = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?pods$/;
const POD = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/;
const POD_STREAM = /^\/api\/v1\/namespaces\/[^/]+\/pods\/([^/]+)\/(?:exec|attach|portforward)$/;
/** The one pod that does not exist: its upgrades are refused with 404, as kube-apiserver refuses them. */
export const MISSING_POD = 'missing';
/** kube-apiserver's proxy subresources, matched on the percent-decoded path as Go's URL.Path has it. */
const PROXIED = /^\/api\/v1\/(?:namespaces\/[^/]+\/(?:pods|services)|nodes)\/[^/]+\/proxy(?:\/|$)/;
const REVIEWS = /^\/apis\/authentication\.k8s\.io\/(v1|v1beta1)\/selfsubjectreviews$/;
const AUTHN_VERSION = /^\/apis\/authentication\.k8s\.io\/(v1|v1beta1)$/;
/** Paths kube-apiserver serves to anyone (system:public-info-viewer). */
const PUBLIC = new Set(['/version', '/healthz', '/livez', '/readyz']);

/** WebSocket subprotocols of exec, attach and port-forward: all end in `.k8s.io`. */
const pickSubprotocol = (offered: Set<string>): string | false => [...offered].find((p) => p.endsWith('.k8s.io')) ?? false;

/** Percent-decoded as Go's URL.Path is; a malformed escape is left as it is. */
const decodedPath = (path: string): string => {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
};

const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

const firstHeader = (rawHeaders: readonly string[], name: string): string | undefined =>
  headerLines(rawHeaders).find(([n]) => n.toLowerCase() === name)?.[1];

function sendJSON(res: ServerResponse, code: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Refuses an upgrade as kube-apiserver does: an ordinary response, and the
 * connection stays open for the next request (Go's HTTP server keeps a refused
 * upgrade's connection alive). Bytes the client sent after the head are read as
 * that next request, so a proxy that pipes a refused upgrade shows it here.
 */
function refuseUpgrade(server: Server, socket: Duplex, head: Buffer, code: number, body: object, auditId: string): void {
  const text = JSON.stringify(body);
  socket.write(
    `HTTP/1.1 ${code} ${STATUS_CODES[code]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` +
      `Audit-ID: ${auditId}\r\n\r\n${text}`,
  );
  if (head.length > 0) socket.unshift(head);
  // Hand the socket back to the HTTP server, which parses whatever comes next as a new request.
  server.emit('secureConnection', socket);
}

/** Starts the dev upstream over HTTPS. */
export async function startDevUpstream(opts: DevUpstreamOptions): Promise<DevUpstream> {
  const config: RequestHeaderConfig = {
    ...kubeadmRequestHeader,
    ...opts.headers,
    allowedNames: opts.allowedNames ?? kubeadmRequestHeader.allowedNames,
  };
  const maxSeen = opts.maxSeen ?? 10_000;
  const seen: SeenRequest[] = [];
  const watches = new Set<{ namespace: string | undefined; res: ServerResponse }>();
  const tunnels = new Set<Duplex>();
  const wss = new WebSocketServer({ noServer: true, handleProtocols: pickSubprotocol, perMessageDeflate: false });
  let resourceVersion = 1000;
  let proxiedPage: string | undefined;

  const record = (req: IncomingMessage, user: UserInfo | null, auditId: string | undefined) => {
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      user,
      rawHeaders: [...req.rawHeaders],
      auditId,
      ...(req.headers.upgrade !== undefined && { upgrade: req.headers.upgrade }),
    });
    // Trim in batches: one splice per maxSeen requests rather than a shift per request.
    if (seen.length >= 2 * maxSeen) seen.splice(0, seen.length - maxSeen);
  };

  // The TLS layer asks for a client certificate and checks it against the
  // requestheader CA, but lets every client in: like kube-apiserver, whether
  // the certificate is trusted is decided per request, and without one the
  // request is simply unauthenticated.
  const server = createServer({
    cert: opts.tls.cert,
    key: opts.tls.key,
    ca: opts.clientCA,
    requestCert: true,
    rejectUnauthorized: false,
  });

  const route = async (req: IncomingMessage, res: ServerResponse, user: UserInfo | null): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://upstream.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (PUBLIC.has(path) && method === 'GET') {
      if (path === '/version') return sendJSON(res, 200, kube.version);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    if (!user) return sendJSON(res, 401, kube.unauthorized());

    let m: RegExpExecArray | null;
    if ((m = REVIEWS.exec(path)) && method === 'POST') {
      return sendJSON(res, 201, kube.selfSubjectReview(`authentication.k8s.io/${m[1]}`, user));
    }
    if (method === 'GET') {
      if (path === '/api') return sendJSON(res, 200, kube.apiVersions(hostPort(req.socket.localAddress ?? '', req.socket.localPort ?? 0)));
      if (path === '/api/v1') return sendJSON(res, 200, kube.coreResources);
      if (path === '/apis') return sendJSON(res, 200, kube.apiGroupList);
      if (path === '/apis/authentication.k8s.io') return sendJSON(res, 200, kube.authnAPIGroup);
      if ((m = AUTHN_VERSION.exec(path))) return sendJSON(res, 200, kube.authnResources(`authentication.k8s.io/${m[1]}`));
      if ((m = POD.exec(path))) return sendJSON(res, 200, kube.pod(decodeURIComponent(m[1]), decodeURIComponent(m[2])));
      if ((m = PODS.exec(path))) {
        const namespace = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
        const watch = url.searchParams.get('watch');
        if (watch === '1' || watch === 'true') return startWatch(res, namespace, Number(url.searchParams.get('timeoutSeconds')));
        const limit = Number(url.searchParams.get('limit')) || 10;
        return sendJSON(res, 200, kube.podList(namespace ?? 'default', Math.min(limit, 10)));
      }
      if (proxiedPage !== undefined && PROXIED.test(decodedPath(path))) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(proxiedPage) });
        res.end(proxiedPage);
        return;
      }
      if (path === '/debug/headers') return sendJSON(res, 200, { headers: headerLines(req.rawHeaders) });
      if (path === '/debug/bytes') {
        const n = Number(url.searchParams.get('n') ?? '0');
        if (!Number.isSafeInteger(n) || n < 0 || n > MAX_DEBUG_BYTES) {
          return sendJSON(res, 400, kube.status(400, 'BadRequest', `n must be an integer from 0 to ${MAX_DEBUG_BYTES}`));
        }
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
        return pipeline(Readable.from(patternStream(n)), res);
      }
    }
    if (path === '/debug/echo' && (method === 'POST' || method === 'PUT')) {
      const length = req.headers['content-length'];
      res.writeHead(200, {
        'content-type': req.headers['content-type'] ?? 'application/octet-stream',
        ...(length !== undefined && { 'content-length': length }),
      });
      // pipeline honours back-pressure both ways: a slow reader slows the sender.
      return pipeline(req, res);
    }
    if (POD_STREAM.test(path)) return sendJSON(res, 400, kube.status(400, 'BadRequest', 'Upgrade request required'));
    return sendJSON(res, 404, kube.notFound());
  };

  const startWatch = (res: ServerResponse, namespace: string | undefined, timeoutSeconds: number): void => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' });
    // Headers go out now: a client waits for them before it expects any event.
    res.flushHeaders();
    const watch = { namespace, res };
    watches.add(watch);
    const timer = timeoutSeconds > 0 ? setTimeout(() => res.end(), timeoutSeconds * 1000) : undefined;
    res.on('close', () => {
      watches.delete(watch);
      clearTimeout(timer);
    });
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // A client that goes away mid-request must not take the server down.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const user = authenticateRequestHeader(req.socket as TLSSocket, req.rawHeaders, config);
    const auditId = firstHeader(req.rawHeaders, 'audit-id');
    record(req, user, auditId);
    // kube-apiserver answers with the caller's Audit-ID, or one it made up.
    res.setHeader('audit-id', auditId ?? randomUUID());
    route(req, res, user).catch(() => {
      if (!res.headersSent) sendJSON(res, 500, kube.status(500, 'InternalError', 'internal error in the dev upstream'));
      else res.destroy();
    });
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    tunnels.add(socket);
    socket.on('close', () => tunnels.delete(socket));
    const user = authenticateRequestHeader(socket as TLSSocket, req.rawHeaders, config);
    const requestAuditId = firstHeader(req.rawHeaders, 'audit-id');
    record(req, user, requestAuditId);
    const auditId = requestAuditId ?? randomUUID();
    const path = new URL(req.url ?? '/', 'https://upstream.invalid').pathname;
    const upgrade = (req.headers.upgrade ?? '').toLowerCase();

    if (!user) return refuseUpgrade(server, socket, head, 401, kube.unauthorized(), auditId);
    if ((POD_STREAM.exec(path)?.[1] ?? MISSING_POD) === MISSING_POD) return refuseUpgrade(server, socket, head, 404, kube.notFound(), auditId);
    if (upgrade === 'websocket') {
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => ws.terminate());
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      });
      return;
    }
    if (upgrade === 'spdy/3.1') {
      // Echo the client's first protocol version, as kube's negotiation would pick it.
      const version = firstHeader(req.rawHeaders, 'x-stream-protocol-version');
      const versionLine = version && /^[\x21-\x7e]+$/.test(version) ? `X-Stream-Protocol-Version: ${version}\r\n` : '';
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n${versionLine}Audit-ID: ${auditId}\r\n\r\n`,
      );
      // Not a SPDY server: the proxy's tunnel is byte-transparent, so echoing
      // the bytes proves they flow both ways.
      if (head.length > 0) socket.unshift(head);
      socket.pipe(socket);
      return;
    }
    refuseUpgrade(server, socket, head, 400, kube.status(400, 'BadRequest', `unsupported upgrade: ${upgrade}`), auditId);
  });

  const host = opts.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: opts.port ?? 0 }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });

  return {
    url: `https://${hostPort(host, port)}`,
    port,
    seen,
    emitPodEvent(namespace, type, object) {
      const line = `${JSON.stringify({ type, object: object ?? kube.pod(namespace, 'demo-0', String(++resourceVersion)) })}\n`;
      let reached = 0;
      for (const watch of watches) {
        if (watch.namespace !== undefined && watch.namespace !== namespace) continue;
        watch.res.write(line);
        reached++;
      }
      return reached;
    },
    serveProxiedPage(html) {
      proxiedPage = html;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const watch of watches) watch.res.end();
        for (const ws of wss.clients) ws.terminate();
        // Upgraded sockets belong to us now, not to the HTTP server.
        for (const socket of tunnels) socket.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
