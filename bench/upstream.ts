/**
 * The bench upstream (a child process): a lean TLS server that answers like
 * kube-apiserver and does as little else as possible, so that it is not the
 * bottleneck. Unlike src/dev/upstream.ts it records nothing, runs no
 * requestheader authenticator per request and serves precomputed bodies.
 *
 * - mutual TLS: a client certificate from the front-proxy CA is asked for at the
 *   handshake, and only over a connection that presented one are the X-Remote-*
 *   headers trusted (as kube-apiserver's requestheader authenticator);
 * - otherwise a bearer token starting {@link PASSTHROUGH_PREFIX} is accepted, as
 *   kube-apiserver's own authenticators would decide a token the proxy passed
 *   through (authentication.passthrough), at the cost of a prefix check; one that
 *   arrives over the front-proxy certificate is logged (it should not);
 * - otherwise an X-Forwarded-User header is accepted as the identity: oauth2-proxy's
 *   (bench/servers/oauth2-proxy.ts), which cannot present a client certificate
 *   upstream. kube-apiserver would not accept it (bench/README.md, "oauth2-proxy");
 * - TLS handshakes are counted (full and resumed), so a window can tell how often a
 *   proxy opened a new upstream connection;
 * - POST the TokenReview API ({@link TOKEN_REVIEW_PATH}, for authentication.tokenReview)
 *   or {@link WEBHOOK_PATH} (a token webhook, for authentication.webhook), over a
 *   verified client certificate: a token starting {@link REVIEWED_PREFIX} is
 *   authenticated, any other is not (scenario 7);
 * - GET {@link POD_PATH}: a ~1 KiB Pod with kube-apiserver's response headers;
 * - GET pods?watch=true: a watch that stays open; the `emit` call sends events
 *   round-robin across the open watches at a fixed rate, each carrying the
 *   monotonic clock (ns) of its write as its resourceVersion;
 * - Upgrade (SPDY/3.1) on .../exec or .../portforward: 101, then either an echo
 *   or, with `bytes=N` in the query, N bytes from the upstream and the end.
 *
 * argv[2]: JSON { cert, key, clientCA } (PEM file paths).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer } from 'node:http2';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { PASSTHROUGH_PREFIX, POD_PATH, REVIEWED_PREFIX, TOKEN_REVIEW_PATH, WEBHOOK_PATH, pod } from './fixtures.js';
import { emitEvent, serveCalls } from './ipc.js';

interface Options {
  readonly cert: string;
  readonly key: string;
  readonly clientCA: string;
  /** Offer h2 by ALPN too (node:http2's compatibility API; HTTP/1.1 clients and upgrades as before). */
  readonly http2?: boolean;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;

const POD_BODY = Buffer.from(JSON.stringify(pod('bench-0', '1000')));
/** What kube-apiserver sends with every response, besides Audit-ID and Date. */
const API_HEADERS = [
  'Cache-Control', 'no-cache, private',
  'Content-Type', 'application/json',
  'X-Kubernetes-Pf-Flowschema-Uid', '5a6c1b53-7f3e-4c1d-9e1f-0b9d7c2f3a11',
  'X-Kubernetes-Pf-Prioritylevel-Uid', 'b2f4e8a1-3c5d-4f6e-8a7b-9c0d1e2f3a4b',
];
const [EVENT_HEAD, EVENT_TAIL] = JSON.stringify({ type: 'MODIFIED', object: pod('bench-0', '@RV@') }).split('@RV@') as [string, string];
const SOURCE_CHUNK = Buffer.alloc(64 * 1024, 0x6b);
const UPGRADE_PATH = /^\/api\/v1\/namespaces\/default\/pods\/[^/]+\/(?:exec|portforward|attach)(?:\?|$)/;

const watches: ServerResponse[] = [];
let nextWatch = 0;

const tlsOptions = {
  cert: readFileSync(options.cert),
  key: readFileSync(options.key),
  ca: readFileSync(options.clientCA),
  requestCert: true,
  // A passthrough request comes without the proxy's certificate: refused per request, not at the handshake.
  rejectUnauthorized: false,
};
// Typed as the HTTP/1.1 server: node:http2's compatibility API gives handlers the same shape.
const server = options.http2
  ? (createSecureServer({ ...tlsOptions, allowHTTP1: true, settings: { maxConcurrentStreams: 100 } }) as unknown as ReturnType<typeof createServer>)
  : createServer(tlsOptions);
server.keepAliveTimeout = 120_000;
server.requestTimeout = 0;
server.headersTimeout = 60_000;

/**
 * As kube-apiserver's union authenticator: identity headers count only over the
 * front-proxy certificate; without them (or without the certificate) the bearer
 * token decides, here a passthrough token. Last, and for the bench only:
 * oauth2-proxy's X-Forwarded-User, which comes without a certificate.
 */
function identified(req: IncomingMessage): boolean {
  const socket = req.socket as TLSSocket;
  if (overFrontProxyCertificate(socket) && req.headers['x-remote-user'] !== undefined) return true;
  if (req.headers.authorization?.startsWith(`Bearer ${PASSTHROUGH_PREFIX}`) === true) return true;
  return req.headers['x-forwarded-user'] !== undefined && !overFrontProxyCertificate(socket);
}

/**
 * A verified client certificate on this connection. Not `authorized` alone: Node reports
 * a resumed TLS 1.3 session that never had a client certificate as authorized (its
 * VerifyPeerCertificate takes a resumed TLS 1.3 session for PSK), which made passed-through
 * requests look as if they came over the proxy's certificate.
 */
function overFrontProxyCertificate(socket: TLSSocket): boolean {
  return socket.authorized && socket.getPeerCertificate().raw !== undefined;
}

let passedOverCertificate = 0;
/** A passed-through request should come without the front-proxy certificate: the first few that do not are logged. */
function notePassthrough(req: IncomingMessage): void {
  const socket = req.socket as TLSSocket;
  if (!overFrontProxyCertificate(socket) || req.headers['x-remote-user'] !== undefined || ++passedOverCertificate > 20) return;
  process.stderr.write(`passthrough token over the front-proxy certificate${socket.isSessionReused() ? ' (resumed TLS session)' : ''}\n`);
}

let refusals = 0;
/** Why the first few requests were refused, in the upstream's log (the token itself never). */
function logRefusal(req: IncomingMessage): void {
  if (++refusals > 20) return;
  const socket = req.socket as TLSSocket;
  const auth = req.headers.authorization;
  const why = `${overFrontProxyCertificate(socket) ? 'front-proxy certificate without X-Remote-User' : 'no front-proxy certificate'}, ${auth === undefined ? 'no Authorization' : 'another Authorization'}`;
  process.stderr.write(`401 ${req.method ?? ''} ${req.url ?? ''}: ${why}${socket.isSessionReused() ? ' (resumed TLS session)' : ''}\n`);
}

/** A TokenReview v1 answer: authenticated for the bench's reviewed tokens, no for any other. */
function review(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let token = '';
    try {
      token = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { spec?: { token?: string } }).spec?.token ?? '';
    } catch {
      // not JSON: not authenticated
    }
    const status = token.startsWith(REVIEWED_PREFIX)
      ? { authenticated: true, user: { username: 'bench-reviewed', uid: token.slice(REVIEWED_PREFIX.length), groups: ['bench:reviewed'] }, audiences: ['kubernetes'] }
      : { authenticated: false };
    const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', metadata: { creationTimestamp: null }, spec: {}, status });
    res.writeHead(201, ['Content-Type', 'application/json', 'Content-Length', String(Buffer.byteLength(body))]);
    res.end(body);
  });
}

server.on('request', (req, res) => {
  const auditId = req.headers['audit-id'] ?? '00000000-0000-0000-0000-000000000000';
  if (req.method === 'POST' && (req.url === TOKEN_REVIEW_PATH || req.url === WEBHOOK_PATH) && overFrontProxyCertificate(req.socket as TLSSocket)) {
    review(req, res);
    return;
  }
  if (!identified(req)) {
    logRefusal(req);
    const body = '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}';
    res.writeHead(401, [...API_HEADERS, 'Audit-ID', auditId, 'Content-Length', String(body.length)]);
    res.end(body);
    return;
  }
  notePassthrough(req);
  const url = req.url ?? '/';
  if (url === POD_PATH) {
    res.writeHead(200, [...API_HEADERS, 'Audit-ID', auditId, 'Content-Length', String(POD_BODY.length)]);
    res.end(POD_BODY);
    return;
  }
  if (url.startsWith('/api/v1/namespaces/default/pods?') && url.includes('watch=true')) {
    res.writeHead(200, [...API_HEADERS, 'Audit-ID', auditId]);
    res.flushHeaders();
    watches.push(res);
    res.on('close', () => {
      const at = watches.indexOf(res);
      if (at >= 0) {
        watches[at] = watches[watches.length - 1]!;
        watches.pop();
      }
    });
    return;
  }
  res.writeHead(404, [...API_HEADERS, 'Audit-ID', auditId, 'Content-Length', '2']);
  res.end('{}');
});

server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
  socket.on('error', () => socket.destroy());
  const url = req.url ?? '/';
  if (!identified(req) || !UPGRADE_PATH.test(url) || (req.headers.upgrade ?? '').toLowerCase() !== 'spdy/3.1') {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  const version = req.headers['x-stream-protocol-version'];
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
      `${typeof version === 'string' ? `X-Stream-Protocol-Version: ${version.split(',')[0].trim()}\r\n` : ''}` +
      `Audit-ID: ${String(req.headers['audit-id'] ?? '-')}\r\n\r\n`,
  );
  const bytes = /[?&]bytes=(\d+)/.exec(url);
  if (!bytes) {
    if (head.length) socket.unshift(head);
    socket.pipe(socket);
    return;
  }
  socket.resume(); // whatever the client sends is dropped
  let left = Number(bytes[1]);
  const pump = () => {
    while (left > 0) {
      const chunk = left >= SOURCE_CHUNK.length ? SOURCE_CHUNK : SOURCE_CHUNK.subarray(0, left);
      left -= chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  pump();
});

const handshakes = { full: 0, resumed: 0 };
server.on('secureConnection', (socket: TLSSocket) => {
  if (socket.isSessionReused()) handshakes.resumed++;
  else handshakes.full++;
});

server.on('clientError', (_err, socket) => socket.destroy());
server.on('tlsClientError', () => undefined);

/** Sends `rate` events a second for `durationMs`, one watch after another; resolves with how many were written. */
function emit({ rate, durationMs }: { rate: number; durationMs: number }): Promise<number> {
  return new Promise((resolve) => {
    const start = performance.now();
    let sent = 0;
    const tick = () => {
      const elapsed = performance.now() - start;
      const due = Math.min(Math.floor((elapsed * rate) / 1000), Math.floor((durationMs * rate) / 1000));
      while (sent < due && watches.length > 0) {
        const watch = watches[nextWatch++ % watches.length];
        watch.write(`${EVENT_HEAD}${process.hrtime.bigint()}${EVENT_TAIL}\n`);
        sent++;
      }
      if (elapsed >= durationMs || watches.length === 0) resolve(sent);
      else setTimeout(tick, 1);
    };
    tick();
  });
}

serveCalls({
  emit,
  watchCount: () => watches.length,
  handshakes: () => ({ ...handshakes }),
  endWatches: () => {
    for (const watch of [...watches]) watch.end();
    return true;
  },
});

server.listen(0, '127.0.0.1', () => emitEvent('ready', { port: (server.address() as AddressInfo).port }));
