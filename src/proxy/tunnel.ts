/**
 * Upgrade tunnels (exec, attach, port-forward): SPDY/3.1 and WebSocket alike.
 *
 * The upstream connection is trusted for identity headers, so a client byte
 * may reach it only once the upstream has switched protocols for this very
 * request (CVE-2018-1002105, one layer out). Until the upstream answers, the
 * client socket is not read at all; bytes the client pipelined after its head
 * wait in `head`. Node's HTTP client parses the upstream's answer:
 *
 * - `101` with the protocol asked for: the 101 head goes to the client, then
 *   the early bytes go up, then bytes are copied both ways without looking.
 * - anything else (403 from RBAC, 404 for a missing pod): relayed to the
 *   client as an ordinary response, then both connections close. A refused
 *   upgrade's connection is never reused and never piped.
 *
 * http-proxy is not used because its ws path destroys non-WebSocket upgrades,
 * and kubectl still speaks SPDY/3.1.
 */
import { request, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RequestContext } from '../request/context.js';
import type { ProxyErrorCode } from '../request/errors.js';
import type { Upstream } from './upstream.js';
import { clientResponseHeaders } from './response-headers.js';
import { upstreamErrorCode } from './upstream-errors.js';

/** A refusal is a Status object of a few hundred bytes; anything far larger is cut. */
const MAX_REFUSAL_BODY = 64 * 1024;


export interface TunnelOptions {
  /** Present the proxy's client certificate upstream (false for a token passed through unread). */
  readonly clientCertificate: boolean;
  /** Time the upstream has to connect and start its answer. */
  readonly responseTimeout: number;
  /** Whether a cookie name is one of the proxy's own: the upstream may not set those. */
  readonly ownsCookie: (name: string) => boolean;
  /** The upstream failed before answering: the caller writes the Status error. */
  readonly onError: (code: ProxyErrorCode, err: Error) => void;
  /** Both directions are closed; called once. */
  readonly onClose: () => void;
}

export function tunnel(
  client: Duplex,
  head: Buffer,
  ctx: RequestContext,
  headers: string[],
  upstream: Upstream,
  options: TunnelOptions,
): void {
  const asked = protocolOf(headers);
  let server: Duplex | undefined;
  let answered = false;
  let closed = false;
  /** Closes both sides once; `keepClient` leaves the client to the Status error being written on it. */
  const finish = (keepClient = false) => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    outgoing.destroy();
    server?.destroy();
    if (!keepClient) client.destroy();
    options.onClose();
  };
  const fail = (err: Error) => {
    const report = !answered && !closed;
    if (report) options.onError(upstreamErrorCode(err), err);
    finish(report);
  };
  const timer = setTimeout(
    () => fail(Object.assign(new Error('upstream did not answer the upgrade'), { code: 'ETIMEDOUT' })),
    options.responseTimeout,
  );

  const outgoing = request({
    method: ctx.method,
    path: ctx.target,
    headers: ['Host', upstream.hostHeader, ...headers, ...emptyBodyFraming(ctx.method, headers)],
    setHost: false,
    createConnection: () => upstream.connect(options.clientCertificate),
  });
  const answer = (res: IncomingMessage) => {
    answered = true;
    clearTimeout(timer);
    ctx.upstreamStatus = res.statusCode ?? 0;
    ctx.status = ctx.upstreamStatus;
  };

  outgoing.on('upgrade', (res: IncomingMessage, socket: Duplex, upstreamHead: Buffer) => {
    server = socket;
    socket.on('error', () => finish());
    socket.on('close', () => finish());
    // A 101 to another protocol than the one asked for is not a tunnel the client agreed to.
    if (String(res.headers.upgrade ?? '').toLowerCase() !== asked) {
      return fail(new Error(`upstream switched to ${JSON.stringify(res.headers.upgrade)}, not the protocol asked for`));
    }
    answer(res);
    client.write(responseHead(101, clientResponseHeaders(101, res.rawHeaders, options.ownsCookie)));
    if (upstreamHead.length) client.write(upstreamHead);
    ctx.bytesSent += upstreamHead.length;
    // Only now may the client's bytes go up: first those it pipelined behind its head.
    if (head.length) socket.write(head);
    socket.on('data', (data: Buffer) => (ctx.bytesSent += data.length));
    socket.pipe(client);
    client.pipe(socket);
  });

  outgoing.on('response', (res: IncomingMessage) => {
    answer(res);
    relayRefusal(res, client, ctx, options.ownsCookie, () => finish());
  });

  outgoing.on('error', fail);
  client.on('error', () => finish());
  client.on('close', () => finish());
  outgoing.end();
}

/** Relays a refused upgrade as an ordinary response with a length, then closes both sides. */
function relayRefusal(res: IncomingMessage, client: Duplex, ctx: RequestContext, ownsCookie: (name: string) => boolean, finish: () => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_REFUSAL_BODY) return finish();
    chunks.push(chunk);
  });
  res.on('error', finish);
  res.on('end', () => {
    const body = Buffer.concat(chunks);
    ctx.bytesSent += body.length;
    const status = res.statusCode ?? 502;
    const headers = clientResponseHeaders(status, res.rawHeaders, ownsCookie);
    client.end(Buffer.concat([Buffer.from(responseHead(status, headers, body.length), 'latin1'), body]), finish);
  });
}

/**
 * An HTTP/1.1 response head from header lines already filtered for the client;
 * a refusal gets our own framing (its body is relayed whole, then we close).
 */
function responseHead(status: number, headers: readonly string[], contentLength?: number): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (let i = 0; i < headers.length; i += 2) {
    const lower = headers[i].toLowerCase();
    if (contentLength !== undefined && (lower === 'content-length' || lower === 'connection')) continue;
    head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  }
  if (contentLength !== undefined) head += `Content-Length: ${contentLength}\r\nConnection: close\r\n`;
  return `${head}\r\n`;
}

/**
 * An upgrade has no body (the pipeline refused any that had one), but Node
 * frames a POST without a length as chunked, and the chunked terminator would
 * then reach the tunnel. kubectl sends `Content-Length: 0` itself; say it when
 * the client did not.
 */
function emptyBodyFraming(method: string, headers: readonly string[]): string[] {
  if (method === 'GET') return [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i].toLowerCase() === 'content-length') return [];
  return ['Content-Length', '0'];
}

/** The protocol the upgrade asks for, lower-cased (the pipeline has checked it is one token). */
function protocolOf(headers: readonly string[]): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].toLowerCase() === 'upgrade') return headers[i + 1].trim().toLowerCase();
  }
  return undefined;
}
