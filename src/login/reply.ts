/**
 * The few response shapes the login routes need, on a plain Node response
 * (HTTP/1.1 or HTTP/2), and reading a small form body.
 */
import type { ClientRequest, ClientResponse } from '../request/client.js';

export function send(res: ClientResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'content-type': `${contentType}; charset=utf-8`, 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

export const sendJson = (res: ClientResponse, status: number, value: unknown) => send(res, status, 'application/json', JSON.stringify(value));

export function redirect(res: ClientResponse, location: string): void {
  res.writeHead(303, { location, 'content-length': '0' }).end();
}

/** Adds a Set-Cookie line without replacing the ones already set (express-session sets its own). */
export function appendSetCookie(res: ClientResponse, line: string): void {
  const prev = res.getHeader('set-cookie');
  res.setHeader('set-cookie', prev === undefined ? [line] : [...(Array.isArray(prev) ? prev : [String(prev)]), line]);
}

/**
 * An application/x-www-form-urlencoded body of at most `limit` bytes, or
 * undefined when it is of another type or too large.
 */
export async function readForm(req: ClientRequest, limit: number): Promise<URLSearchParams | undefined> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
