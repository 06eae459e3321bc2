/**
 * The client side of a request, over HTTP/1.1 or HTTP/2. Node's HTTP/2
 * compatibility API gives both the same shape except for a few details kept
 * here: the authority arrives as :authority, and a request body is announced
 * by the stream itself rather than by Content-Length or Transfer-Encoding.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

export type ClientRequest = IncomingMessage | Http2ServerRequest;
export type ClientResponse = ServerResponse | Http2ServerResponse;

/** The host (and port) the client addressed: Host over HTTP/1.1, :authority over HTTP/2. */
export function authority(req: ClientRequest): string | undefined {
  return req.headers.host ?? ('authority' in req ? req.authority : undefined);
}

/**
 * A host and optional port, as RFC 3986 has them and nothing else: DNS labels
 * (letters, digits, `-`, `_`) or an IPv4 address, or an IPv6 literal in
 * brackets, that a URL parser reads as the same host. Node accepts any bytes
 * in Host; a `/`, `#`, `?`, `\` or `@` there would let a URL parser read a
 * different host than the one we matched (`2130706433/.partner.example` is
 * 127.0.0.1 to a URL, a `*.partner.example` route to a suffix match).
 */
const HOST_AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?)(:\d{0,5})?$/;

/**
 * The host an authority (a Host header, a URL's) names: lower case, without port or
 * trailing dot; undefined when there is none, or none a URL parser reads the same
 * (`2130706433` is 127.0.0.1 to it, `010.1` octal; invalid punycode is no host at all).
 */
export function hostOf(authority: string | undefined): string | undefined {
  if (!authority || !HOST_AUTHORITY.test(authority)) return undefined;
  const host = (authority.startsWith('[') ? authority.slice(0, authority.indexOf(']') + 1) : authority.replace(/:\d*$/, '')).toLowerCase();
  let parsed: string;
  try {
    parsed = new URL(`https://${authority}`).hostname;
  } catch {
    return undefined;
  }
  return parsed === host ? host.replace(/\.$/, '') || undefined : undefined;
}

/** Whether a request body follows the head. */
export function hasBody(req: ClientRequest): boolean {
  if ('stream' in req) return !req.stream.endAfterHeaders;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
