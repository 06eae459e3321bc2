/**
 * Upgrade tunnels (exec, attach, port-forward): SPDY/3.1 and WebSocket alike.
 * After admission the proxy writes the rewritten request head to a fresh
 * upstream connection and then copies bytes both ways without looking at them,
 * so the upstream's 101 (or its refusal) reaches the client exactly as sent.
 * This is why http-proxy is not used: its ws path destroys non-WebSocket
 * upgrades, and kubectl still speaks SPDY/3.1.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RequestContext } from './context.js';
import type { Upstream } from './upstream.js';
import { upstreamErrorCode } from './upstream-errors.js';
import type { ProxyErrorCode } from './errors.js';

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;
/** The upstream must start its answer within this many bytes. */
const MAX_STATUS_LINE = 8192;

export interface TunnelOptions {
  /** Time the upstream has to connect and start its answer. */
  readonly responseTimeout: number;
  /** The upstream failed before answering: the caller writes the Status error. */
  readonly onError: (code: ProxyErrorCode, err: Error) => void;
  /** Both directions are closed; called once. */
  readonly onClose: () => void;
}

export function tunnel(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  ctx: RequestContext,
  headers: string[],
  upstream: Upstream,
  options: TunnelOptions,
): void {
  const server = upstream.connect();
  let answered = false;
  let closed = false;
  const finish = () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    client.destroy();
    server.destroy();
    options.onClose();
  };
  const fail = (err: Error) => {
    if (!answered && !closed) options.onError(upstreamErrorCode(err), err);
    finish();
  };
  const timer = setTimeout(
    () => fail(Object.assign(new Error('upstream did not answer the upgrade'), { code: 'ETIMEDOUT' })),
    options.responseTimeout,
  );

  server.once(upstream.secure ? 'secureConnect' : 'connect', () => {
    server.write(requestHead(req, upstream.hostHeader, headers));
    if (head.length) server.write(head);
    client.pipe(server);
  });

  // Peek at the status line for the audit log, then get out of the way.
  let pending = Buffer.alloc(0);
  const onFirstBytes = (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    const lineEnd = pending.indexOf('\r\n');
    if (lineEnd < 0 && pending.length < MAX_STATUS_LINE) return;
    server.off('data', onFirstBytes);
    clearTimeout(timer);
    answered = true;
    const match = STATUS_LINE.exec(pending.subarray(0, Math.max(lineEnd, 0)).toString('latin1'));
    ctx.upstreamStatus = match ? Number(match[1]) : 0;
    ctx.status = ctx.upstreamStatus;
    ctx.bytesSent += pending.length;
    client.write(pending);
    server.on('data', (data: Buffer) => (ctx.bytesSent += data.length));
    server.pipe(client);
  };
  server.on('data', onFirstBytes);

  server.on('error', fail);
  client.on('error', finish);
  server.on('close', finish);
  client.on('close', finish);
}

/** The request line and header block for the upstream, as raw HTTP/1.1. */
function requestHead(req: IncomingMessage, host: string, headers: string[]): string {
  let head = `${req.method} ${req.url} HTTP/1.1\r\nHost: ${host}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}
