/**
 * Maps a failure to reach the upstream to our error registry:
 * refused/unreachable → 503, timed out → 504, anything else on the wire → 502.
 */
import type { ProxyErrorCode } from '../request/errors.js';

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const TIMED_OUT = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

export function upstreamErrorCode(err: unknown): ProxyErrorCode {
  const code = (err as { code?: string } | null)?.code ?? '';
  if (UNREACHABLE.has(code)) return 'UPSTREAM_UNAVAILABLE';
  if (TIMED_OUT.has(code)) return 'UPSTREAM_TIMEOUT';
  return 'UPSTREAM_BAD_RESPONSE';
}

/** The low-level code, for logs and the upstream-errors metric. */
export function errorName(err: unknown): string {
  return (err as { code?: string } | null)?.code ?? (err as Error)?.name ?? 'Error';
}
