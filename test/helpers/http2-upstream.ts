/**
 * Node's own HTTP/2 server as the upstream, and the Http2Upstream dispatcher on its own in
 * front of it: an upstream's faults produced on demand, shared by test/proxy/http2-upstream.test.ts
 * and the attack classes in test/security/ that need them.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import { Http2Upstream } from '../../src/proxy/http2-upstream.js';
import { devPki } from './stack.js';

/** What a helper needs of a tap test: somewhere to put its cleanup. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

// Node's HTTP/2 compatibility API gives the same shape; handlers are written against HTTP/1.1's types.
type Request = IncomingMessage;
type Response = ServerResponse;

export interface Seen {
  readonly path: string;
  readonly method: string;
  readonly httpVersion: string;
  /** Header lines as bytes read back as UTF-8 (HTTP/2 and HTTP/1.1 both hand them over one char per byte). */
  readonly lines: [string, string][];
  /** Which connection: a number per TLS connection (HTTP/2 session or HTTP/1.1 socket). */
  readonly connection: number;
  /** The client certificate's CN. */
  readonly cn: string | undefined;
}

export interface TestUpstream {
  readonly url: string;
  readonly seen: Seen[];
  /** HTTP/2 sessions, in the order they opened. */
  readonly sessions: ServerHttp2Session[];
  readonly upgrades: { httpVersion: string; alpn: string | false }[];
}

export interface UpstreamOptions {
  /** An HTTP/1.1-only server (node:https), which answers ALPN with http/1.1. */
  readonly http1?: boolean;
  readonly maxConcurrentStreams?: number;
  /** Accept clients without a certificate (impersonation with a token). */
  readonly anyClient?: boolean;
  /** Answers a request; the default answers 200 "ok <path>", and holds ?watch=true open with a first line. */
  readonly handle?: (req: Request, res: Response, seen: Seen) => void;
}

/** An upstream with the dev PKI's serving certificate, asking for the front-proxy client certificate. */
export async function startUpstream(t: Teardown, options: UpstreamOptions = {}): Promise<TestUpstream> {
  const pki = await devPki();
  const tls = {
    cert: await readFile(pki.upstreamCert),
    key: await readFile(pki.upstreamKey),
    ca: await readFile(pki.frontProxyCA),
    requestCert: true,
    rejectUnauthorized: !options.anyClient,
  };
  const seen: Seen[] = [];
  const sessions: ServerHttp2Session[] = [];
  const upgrades: TestUpstream['upgrades'] = [];
  const connectionIds = new WeakMap<object, number>();
  let nextConnection = 0;
  const connectionOf = (key: object) => {
    if (!connectionIds.has(key)) connectionIds.set(key, nextConnection++);
    return connectionIds.get(key)!;
  };
  const handler = (req: Request, res: Response) => {
    const session = (req as { stream?: ServerHttp2Stream }).stream?.session;
    const socket = (session?.socket ?? req.socket) as TLSSocket;
    const lines: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push([req.rawHeaders[i].toLowerCase(), Buffer.from(req.rawHeaders[i + 1], 'latin1').toString('utf8')]);
    const record: Seen = {
      path: req.url ?? '',
      method: req.method ?? '',
      httpVersion: req.httpVersion,
      lines,
      connection: connectionOf(session ?? socket),
      cn: (socket.getPeerCertificate().subject as { CN?: string } | undefined)?.CN,
    };
    seen.push(record);
    if (options.handle) return options.handle(req, res, record);
    if (record.path.includes('watch=true')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"type":"ADDED"}\n');
      return;
    }
    res.end(`ok ${record.path}`);
  };
  let server: Http2SecureServer | HttpsServer;
  if (options.http1) {
    server = createHttpsServer(tls, handler);
  } else {
    const h2 = createSecureServer({ ...tls, allowHTTP1: true, settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 100 } }, (req, res) =>
      handler(req as unknown as Request, res as unknown as Response),
    );
    h2.on('session', (session: ServerHttp2Session) => {
      sessions.push(session);
      session.on('error', () => {});
    });
    h2.on('stream', (stream) => stream.on('error', () => {}));
    server = h2;
  }
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const tlsSocket = socket as TLSSocket;
    upgrades.push({ httpVersion: req.httpVersion, alpn: tlsSocket.alpnProtocol ?? false });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n');
    socket.pipe(socket);
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const session of sessions) session.destroy();
    (server as HttpsServer).closeAllConnections?.();
    server.close();
  });
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    sessions,
    upgrades,
  };
}

/** One request straight through a dispatcher: "status body". */
export function proxiedAnswer(dispatcher: Dispatcher, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let status = 0;
    const chunks: Buffer[] = [];
    dispatcher.dispatch(
      { path, method: 'GET', headers: [] },
      {
        onRequestStart: () => {},
        onResponseStart: (_c, code) => void (status = code),
        onResponseData: (_c, chunk) => void chunks.push(chunk),
        onResponseEnd: () => resolve(`${status} ${Buffer.concat(chunks).toString()}`),
        onResponseError: (_c, err) => reject(err),
      },
    );
  });
}

/** The dispatcher on its own in front of `upstream`, with the front-proxy client certificate. */
export async function direct(t: Teardown, upstream: TestUpstream, options: Partial<ConstructorParameters<typeof Http2Upstream>[0]> = {}): Promise<Http2Upstream> {
  const pki = await devPki();
  const dispatcher = new Http2Upstream({
    tls: { host: '127.0.0.1', port: Number(new URL(upstream.url).port), ca: await readFile(pki.upstreamCA), cert: await readFile(pki.frontProxyClientCert), key: await readFile(pki.frontProxyClientKey) },
    fallback: new Pool(upstream.url),
    ...options,
  });
  t.teardown(() => dispatcher.destroy());
  return dispatcher;
}

/** A TCP relay to the upstream `to()` names for each connection; its sockets, to cut or freeze, as faults a real upstream will not make on demand. */
export async function startRelay(t: Teardown, to: () => string): Promise<{ port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const relay = createNetServer((client) => {
    const server = netConnect(Number(new URL(to()).port), '127.0.0.1');
    sockets.push(client, server);
    for (const s of [client, server]) s.on('error', () => {});
    client.pipe(server).pipe(client);
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    relay.close();
  });
  return { port: (relay.address() as AddressInfo).port, sockets };
}

/** `promise`'s outcome as text, or "still waiting" after `ms`: for what must not hang (a liveness check, not a timing). */
export function within(ms: number, promise: Promise<string>): Promise<string> {
  return Promise.race([promise.catch((err: Error) => `error: ${err.message}`), sleep(ms).then(() => 'still waiting')]);
}
