/** Defaults of `SessionBackend.withRefreshLock`, shared so every backend behaves alike. */

/** Long enough for one token refresh at a slow identity provider. */
export const DEFAULT_LOCK_WAIT_MS = 10_000;
/** Longer than any refresh should take (openid-client's HTTP timeout is 30 s), short enough to recover from a crash. */
export const DEFAULT_LOCK_LEASE_MS = 30_000;

export interface LockOptions {
  waitMs?: number;
  leaseMs?: number;
}

export function lockOptions(options: LockOptions | undefined): { waitMs: number; leaseMs: number } {
  return {
    waitMs: Math.max(0, options?.waitMs ?? DEFAULT_LOCK_WAIT_MS),
    leaseMs: Math.max(1, options?.leaseMs ?? DEFAULT_LOCK_LEASE_MS),
  };
}
