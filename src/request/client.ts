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

/** Whether a request body follows the head. */
export function hasBody(req: ClientRequest): boolean {
  if ('stream' in req) return !req.stream.endAfterHeaders;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
