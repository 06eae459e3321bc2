/**
 * The one place that turns our errors into responses: a Kubernetes Status on
 * an HTTP response, or the same as raw bytes on an upgrade socket.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ClientResponse } from './client.js';
import type { RequestContext } from './context.js';
import { proxyErrors, statusBody, statusHeaders, type ProxyErrorCode } from './errors.js';

export function sendError(res: ClientResponse, ctx: RequestContext, code: ProxyErrorCode): void {
  ctx.errorCode = code;
  ctx.status = proxyErrors[code].status;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = statusBody(code, ctx.id);
  ctx.bytesSent += Buffer.byteLength(body);
  res.writeHead(ctx.status, statusHeaders(code, body, ctx.id)).end(body);
}

/**
 * A page of the proxy's own for a browser, in place of a Status (today: a
 * route's 403). No inline script or style, and nothing else may load.
 */
export function sendPage(res: ClientResponse, ctx: RequestContext, status: number, html: string): void {
  ctx.status = status;
  ctx.bytesSent += Buffer.byteLength(html);
  res
    .writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(html)),
      'cache-control': 'no-store',
      'content-security-policy': "default-src 'none'; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
      'audit-id': ctx.id,
    })
    .end(html);
}

/** Answers an upgrade request with a Status error and closes the socket. */
export function sendErrorOnSocket(socket: Duplex, ctx: RequestContext, code: ProxyErrorCode): void {
  ctx.errorCode = code;
  ctx.status = proxyErrors[code].status;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = statusBody(code, ctx.id);
  ctx.bytesSent += Buffer.byteLength(body);
  socket.end(rawResponse(ctx.status, statusHeaders(code, body, ctx.id), body));
}

/** A complete HTTP/1.1 response as bytes, for sockets that no longer have a ServerResponse. */
export function rawResponse(status: number, headers: Record<string, string>, body: string): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries({ ...headers, connection: 'close' })) head += `${name}: ${value}\r\n`;
  return `${head}\r\n${body}`;
}
