/**
 * What one request did, in one comparable record: the status the client got, the
 * Kubernetes Status reason, and every request the dev upstream received meanwhile.
 * Attack tests compare it with FORBIDDEN_BEFORE_UPSTREAM in a single assertion, so a
 * failure shows all three at once ("101, and the upstream ran it as demo@…").
 */
import type { DevUpstream } from '../../dev/upstream.js';

export interface Observed {
  readonly status: number;
  /** The `reason` of a Kubernetes Status body; null for any other body. */
  readonly reason: string | null;
  /** Each request the upstream received, as `METHOD url as user` (`nobody` when unauthenticated). */
  readonly upstreamReceived: readonly string[];
}

/** Refused by the proxy itself: 403 Status with reason Forbidden, and nothing reached the upstream. */
export const FORBIDDEN_BEFORE_UPSTREAM: Observed = { status: 403, reason: 'Forbidden', upstreamReceived: [] };

function statusReason(body: string): string | null {
  try {
    const parsed = JSON.parse(body) as { kind?: unknown; reason?: unknown };
    return parsed.kind === 'Status' && typeof parsed.reason === 'string' ? parsed.reason : null;
  } catch {
    return null;
  }
}

/** Runs `send` (requests must not overlap: everything the upstream receives meanwhile is counted). */
export async function observe(upstream: DevUpstream, send: () => Promise<{ status: number; body: string }>): Promise<Observed> {
  const before = upstream.seen.length;
  const { status, body } = await send();
  return {
    status,
    reason: statusReason(body),
    upstreamReceived: upstream.seen.slice(before).map((s) => `${s.method} ${s.url} as ${s.user?.username ?? 'nobody'}`),
  };
}
