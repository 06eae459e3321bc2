/**
 * Forwards one ordinary request (including watches and log follows) through
 * the upstream pool with undici's dispatch API: the request body streams up
 * as it arrives, the response streams down chunk by chunk with back-pressure
 * in both directions, and nothing is ever buffered whole.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Writable } from 'node:stream';
import { errors, type Dispatcher } from 'undici';
import { hasBody, type ClientRequest, type ClientResponse } from '../request/client.js';
import type { RequestContext } from '../request/context.js';
import type { ProxyErrorCode } from '../request/errors.js';
import { responseHeaderFilter } from './response-headers.js';
import { upstreamErrorCode } from './upstream-errors.js';

export interface ForwardOptions {
  /** Time the upstream has to send the response head. */
  readonly responseTimeout: number;
  /**
   * Whether a cookie name is one of the proxy's own (`HeaderRules.ownsCookie`):
   * a Set-Cookie for it never reaches the client.
   */
  readonly ownsCookie: (name: string) => boolean;
  /** Called when the upstream cannot be reached or fails before the response head. */
  readonly onError: (code: ProxyErrorCode, err: Error) => void;
}

export function forward(
  req: ClientRequest,
  res: ClientResponse,
  ctx: RequestContext,
  headers: string[],
  pool: Dispatcher,
  options: ForwardOptions,
): void {
  const streaming = ctx.kind !== 'short';
  const body: Writable = res;
  let controller: Dispatcher.DispatchController | undefined;
  let clientGone = false;
  // A client that goes away takes its upstream request with it (a closed watch must not linger).
  // (writableEnded, not writableFinished: Node's HTTP/2 response reports a reset stream as finished.)
  res.once('close', () => {
    clearTimeout(deadline);
    if (res.writableEnded) return;
    clientGone = true;
    controller?.abort(new Error('client closed the connection'));
  });
  // The wait in the queue has its own deadline: undici starts its headersTimeout only when the
  // request is written, and a request queued behind a full pool (upstream.connections) waited
  // without end, its client with it. Not yet sent, it is answered now and never sent. Once
  // started, undici's timeout (from the write, refreshed while a body uploads) takes over: a
  // request sent with what was left of this one ran upstream and was answered 504.
  let timedOut = false;
  /** Answered at the deadline before undici started it: its later abort says nothing more. */
  let answered = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    const err = new errors.HeadersTimeoutError();
    if (controller) return controller.abort(err);
    answered = true;
    if (!clientGone) options.onError(upstreamErrorCode(err), err);
  }, options.responseTimeout).unref();

  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (clientGone) c.abort(new Error('client closed the connection'));
      else if (timedOut) c.abort(new errors.HeadersTimeoutError());
      else clearTimeout(deadline);
    },
    onResponseStart(_c, statusCode, upstreamHeaders) {
      if (statusCode < 200) return; // 1xx informational: not relayed
      clearTimeout(deadline);
      ctx.upstreamStatus = statusCode;
      ctx.status = statusCode;
      // The reason phrase is not relayed: HTTP/2 has none, and HTTP/1.1 clients ignore it.
      res.writeHead(statusCode, responseHeaders(statusCode, upstreamHeaders, options.ownsCookie));
      // A watch's client must see the head before the first event, which may be minutes away.
      // (HTTP/2 sends the head at writeHead already.)
      if (streaming && 'flushHeaders' in res) res.flushHeaders();
    },
    onResponseData(c, chunk) {
      ctx.bytesSent += chunk.length;
      if (!body.write(chunk)) {
        c.pause();
        res.once('drain', () => c.resume());
      }
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError(_c, err) {
      clearTimeout(deadline);
      if (answered) return;
      if (res.headersSent) {
        // Mid-stream failure: the only honest signal left is to cut the response.
        res.destroy(err);
      } else if (!clientGone) {
        options.onError(upstreamErrorCode(err), err);
      }
    },
  };

  pool.dispatch(
    {
      path: ctx.target,
      method: ctx.method,
      headers,
      body: hasBody(req) ? req : null,
      headersTimeout: options.responseTimeout,
      // Long-running responses may be silent for a long time between events.
      bodyTimeout: streaming ? 0 : options.responseTimeout,
    },
    handler,
  );
}

/** undici's parsed head, less what the client may not see (response-headers.ts), in the same shape. */
function responseHeaders(status: number, upstream: IncomingHttpHeaders, ownsCookie: (name: string) => boolean): OutgoingHttpHeaders {
  const keep = responseHeaderFilter(status, upstream.connection, ownsCookie);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined) continue;
    if (!Array.isArray(value)) {
      if (keep(name, value)) out[name] = value;
      continue;
    }
    // Set-Cookie comes as an array, one cookie each.
    const kept = value.filter((one) => keep(name, one));
    if (kept.length) out[name] = kept;
  }
  return out;
}
