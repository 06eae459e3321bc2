/**
 * The refresh lock within one process: per-id mutual exclusion with a bounded
 * wait and a lease, the same contract as the Redis lock (see types.ts).
 */
import { lockOptions, type LockOptions } from './lock-options.js';

interface Holder {
  readonly lease: NodeJS.Timeout;
  /** Woken when the lock is released or its lease runs out; each re-checks. */
  readonly waiters: Set<() => void>;
}

export interface LocalLocks {
  withLock<T>(id: string, fn: () => Promise<T>, options?: LockOptions): Promise<T | undefined>;
}

export function createLocalLocks(): LocalLocks {
  const held = new Map<string, Holder>();

  const free = (id: string, holder: Holder) => {
    // A holder whose lease ran out must not free the lock a later holder took.
    if (held.get(id) !== holder) return;
    clearTimeout(holder.lease);
    held.delete(id);
    for (const wake of holder.waiters) wake();
  };

  const take = (id: string, leaseMs: number): Holder => {
    const holder: Holder = { lease: setTimeout(() => free(id, holder), leaseMs).unref(), waiters: new Set() };
    held.set(id, holder);
    return holder;
  };

  /** Waits until `holder` lets go or `ms` pass. */
  const wait = (holder: Holder, ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        holder.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      holder.waiters.add(done);
    });

  return {
    async withLock(id, fn, options) {
      const { waitMs, leaseMs } = lockOptions(options);
      const deadline = Date.now() + waitMs;
      for (;;) {
        const current = held.get(id);
        if (!current) break;
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        await wait(current, left);
      }
      const mine = take(id, leaseMs);
      try {
        return await fn();
      } finally {
        free(id, mine);
      }
    },
  };
}
