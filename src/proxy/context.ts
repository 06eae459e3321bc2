/**
 * The per-request scope: created first, filled in by each stage, read by the
 * audit line and the metrics when the request ends.
 */
import { randomUUID } from 'node:crypto';
import type { Identity, RejectReason } from '../authn/identity.js';
import type { ClientRequest } from './client.js';
import type { ProxyErrorCode } from './errors.js';
import { requestKind, type RequestKind } from './long-running.js';

export interface RequestContext {
  /** Also sent upstream as Audit-ID, so kube-apiserver's audit event carries it. */
  readonly id: string;
  readonly startedAt: Date;
  readonly startNs: bigint;
  readonly clientAddress: string;
  readonly method: string;
  /** The request target as the client sent it (path and query). */
  readonly target: string;
  /** The target's path, without the query. */
  readonly path: string;
  readonly httpVersion: string;
  readonly kind: RequestKind;
  readonly userAgent: string | undefined;
  readonly referer: string | undefined;
  identity?: Identity;
  rejectReason?: RejectReason;
  errorCode?: ProxyErrorCode;
  /** The status sent to the client (for an upgrade: the upstream's answer). */
  status?: number;
  upstreamStatus?: number;
  /** Response body bytes sent to the client (for an upgrade: tunnel bytes to the client). */
  bytesSent: number;
}

export function createContext(req: ClientRequest, isUpgrade: boolean): RequestContext {
  const target = req.url ?? '/';
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
    httpVersion: req.httpVersion,
    kind: requestKind(path, query, isUpgrade),
    userAgent: req.headers['user-agent'],
    referer: req.headers.referer,
    bytesSent: 0,
  };
}

/** Seconds since the request started, with millisecond precision as nginx prints it. */
export function elapsedSeconds(ctx: RequestContext): number {
  return Number(process.hrtime.bigint() - ctx.startNs) / 1e9;
}
