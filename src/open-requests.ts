/**
 * What is in flight, so that shutdown can let short requests finish, then
 * close the long-running ones (watches, follows, tunnels) and wait until every
 * one has written its audit line; and so that the open-long-running gauge is
 * always right.
 */
import type { RequestKind } from './request/long-running.js';

export interface OpenRequests {
  /** Registers a request; call the returned function exactly when it ends. */
  track(kind: RequestKind, close: () => void): () => void;
  /** Resolves when no request of that kind (short ones, or any) is open, or after `ms`. */
  drained(which: 'short' | 'all', ms: number): Promise<void>;
  /** Closes every open request (long-running ones, after the drain). */
  closeAll(): void;
}

export function createOpenRequests(onChange?: (kind: RequestKind, delta: 1 | -1) => void): OpenRequests {
  const open = new Map<object, { kind: RequestKind; close: () => void }>();
  let shortCount = 0;
  const waiters = new Set<{ which: 'short' | 'all'; done: () => void }>();
  const isDrained = (which: 'short' | 'all') => (which === 'short' ? shortCount === 0 : open.size === 0);

  return {
    track(kind, close) {
      const key = {};
      open.set(key, { kind, close });
      if (kind === 'short') shortCount++;
      else onChange?.(kind, 1);
      return () => {
        if (!open.delete(key)) return;
        if (kind === 'short') shortCount--;
        else onChange?.(kind, -1);
        for (const waiter of waiters) if (isDrained(waiter.which)) waiter.done();
      };
    },
    drained(which, ms) {
      if (isDrained(which)) return Promise.resolve();
      return new Promise((resolve) => {
        const waiter = {
          which,
          done: () => {
            clearTimeout(timer);
            waiters.delete(waiter);
            resolve();
          },
        };
        const timer = setTimeout(waiter.done, ms);
        waiters.add(waiter);
      });
    },
    closeAll() {
      for (const { close } of open.values()) close();
    },
  };
}
