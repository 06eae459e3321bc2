/**
 * What is in flight, so that shutdown can let short requests finish and then
 * close the long-running ones (watches, follows, tunnels), and so that the
 * open-long-running gauge is always right.
 */
import type { RequestKind } from './proxy/long-running.js';

export interface OpenRequests {
  /** Registers a request; call the returned function exactly when it ends. */
  track(kind: RequestKind, close: () => void): () => void;
  /** Resolves when no short request is in flight, or after `ms`. */
  shortDrained(ms: number): Promise<void>;
  /** Closes every open request (long-running ones, after the drain). */
  closeAll(): void;
}

export function createOpenRequests(onChange?: (kind: RequestKind, delta: 1 | -1) => void): OpenRequests {
  const open = new Map<object, { kind: RequestKind; close: () => void }>();
  let shortCount = 0;
  let drained: (() => void) | undefined;

  return {
    track(kind, close) {
      const key = {};
      open.set(key, { kind, close });
      if (kind === 'short') shortCount++;
      else onChange?.(kind, 1);
      return () => {
        if (!open.delete(key)) return;
        if (kind !== 'short') onChange?.(kind, -1);
        else if (--shortCount === 0) drained?.();
      };
    },
    shortDrained(ms) {
      if (shortCount === 0) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },
    closeAll() {
      for (const { close } of open.values()) close();
    },
  };
}
