/**
 * The per-request scope: created first, filled in by each stage, read by the
 * audit line and the metrics when the request ends.
 */
import { randomUUID } from 'node:crypto';
import type { AuthMethod, Identity, RejectReason } from './identity.js';
import { authority, hostOf, type ClientRequest } from './client.js';
import type { ProxyErrorCode } from './errors.js';
import { requestKind, type RequestKind } from './long-running.js';

export interface RequestContext {
  /** Also sent upstream as Audit-ID, so kube-apiserver's audit event carries it. */
  readonly id: string;
  readonly startedAt: Date;
  readonly startNs: bigint;
  readonly clientAddress: string;
  readonly method: string;
  /**
   * The request target in origin-form (path and query): what every later stage
   * reads and what the upstream is sent. An absolute-form target
   * (`https://host/path?q`) becomes its path and query. When `badTarget` is
   * true and no path could be read (`*`), the target as the client sent it,
   * for the audit line.
   */
  readonly target: string;
  /** The target's path, without the query. */
  readonly path: string;
  /** The host the request names (client.ts hostOf), read once; undefined without a Host. */
  readonly host: string | undefined;
  /**
   * The target is not one the proxy forwards: asterisk-form, a fragment, no
   * path at all, an absolute URL for another host than Host names, or a Host
   * that is not a host name (client.ts hostOf). The request is
   * answered 400 and never reaches the upstream.
   */
  readonly badTarget: boolean;
  readonly httpVersion: string;
  readonly kind: RequestKind;
  readonly userAgent: string | undefined;
  readonly referer: string | undefined;
  identity?: Identity;
  /**
   * Which authenticator decided: the identity's method, `passthrough` for a
   * token forwarded unread, `public` for a public route (nothing read).
   */
  authMethod?: AuthMethod | 'passthrough' | 'public';
  /** The route's name (routes[].name), when the gateway's routes are configured. */
  route?: string;
  /** The part of the route's allow rule that refused the caller (users|groups, claims.hd…). */
  rule?: string;
  /** How the route's upstream is told who the caller is (upstream.identity). */
  identityMode?: 'requestheader' | 'impersonation' | 'application';
  rejectReason?: RejectReason;
  /** The user the caller asked to act as (kubectl --as), once the request may go on with it. */
  impersonatedUser?: string;
  errorCode?: ProxyErrorCode;
  /** The status sent to the client (for an upgrade: the upstream's answer). */
  status?: number;
  upstreamStatus?: number;
  /** Response body bytes sent to the client (for an upgrade: tunnel bytes to the client). */
  bytesSent: number;
}

export function createContext(req: ClientRequest, isUpgrade: boolean): RequestContext {
  const requestAuthority = authority(req);
  const form = originForm(req.url ?? '/', requestAuthority);
  const { target } = form;
  const host = hostOf(requestAuthority);
  // A Host that is not a host name: nothing later may route by it, build a URL from it or tell an upstream.
  const bad = form.bad || (requestAuthority !== undefined && host === undefined);
  const queryStart = target.indexOf('?');
  const path = queryStart < 0 ? target : target.slice(0, queryStart);
  const query = new URLSearchParams(queryStart < 0 ? '' : target.slice(queryStart + 1));
  const method = req.method ?? 'GET';
  return {
    id: randomUUID(),
    startedAt: new Date(),
    startNs: process.hrtime.bigint(),
    clientAddress: req.socket.remoteAddress ?? '-',
    method,
    target,
    path,
    host,
    badTarget: bad,
    httpVersion: req.httpVersion,
    kind: requestKind(path, query, isUpgrade),
    userAgent: req.headers['user-agent'],
    referer: req.headers.referer,
    bytesSent: 0,
  };
}

/** scheme, authority, and the rest of an absolute-form target. */
const ABSOLUTE_FORM = /^(https?):\/\/([^/?#]*)(.*)$/i;

/**
 * The origin-form of a request target (RFC 9112 §3.2), and whether the proxy
 * refuses it. An absolute URL is accepted only for the host the client also
 * names in Host: RFC 9112 §3.2.2 has a server use the URL's host and ignore
 * Host, while everything that looked at the request before the upstream does
 * (a load balancer routing by Host, our same-origin check, the browser's
 * cookies) used Host. Refusing the disagreement leaves nothing to choose, and
 * X-Forwarded-Host is Host either way.
 */
function originForm(requested: string, host: string | undefined): { target: string; bad: boolean } {
  if (requested.startsWith('/')) return { target: requested, bad: requested.includes('#') };
  const absolute = ABSOLUTE_FORM.exec(requested);
  if (!absolute) return { target: requested, bad: true };
  const [, scheme = '', targetAuthority = '', rest = ''] = absolute;
  const target = rest.startsWith('/') ? rest : `/${rest}`;
  return { target, bad: target.includes('#') || !sameHost(scheme, targetAuthority, host) };
}

/** Whether two authorities name the same host and port, compared as a URL parser does (case, default port). */
function sameHost(scheme: string, targetAuthority: string, host: string | undefined): boolean {
  if (host === undefined || targetAuthority.includes('@') || host.includes('@')) return false;
  const origin = (authorityText: string) => {
    const url = `${scheme.toLowerCase()}://${authorityText}`;
    return URL.canParse(url) ? new URL(url).host : undefined;
  };
  const named = origin(targetAuthority);
  return named !== undefined && named === origin(host);
}

/** Seconds since the request started, with millisecond precision as nginx prints it. */
export function elapsedSeconds(ctx: RequestContext): number {
  return Number(process.hrtime.bigint() - ctx.startNs) / 1e9;
}
