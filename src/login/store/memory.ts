/**
 * The default backend: everything in this process. Enough for one replica;
 * bounded, so a flood of logins cannot grow memory without limit.
 */
import { LRUCache } from 'lru-cache';
import { createLocalLocks } from './local-lock.js';
import { MemorySessionStore } from './memory-store.js';
import type { IdpSession, SessionBackend } from './types.js';

export interface MemoryBackendOptions {
  /** Most sessions kept; the least recently used are evicted first. */
  maxEntries: number;
  /** A session unused for this long ends. */
  idleTimeoutMs: number;
}

/**
 * An in-memory {@link SessionBackend}.
 *
 * @example
 * ```ts
 * const backend = createMemoryBackend({ maxEntries: 10_000, idleTimeoutMs: 3_600_000 });
 * session({ store: backend.store, ... });
 * ```
 */
export function createMemoryBackend(opts: MemoryBackendOptions): SessionBackend {
  const bySid = new Map<string, Set<string>>();
  const bySub = new Map<string, Set<string>>();
  const link = (map: Map<string, Set<string>>, key: string, id: string) => {
    const ids = map.get(key) ?? new Set<string>();
    map.set(key, ids.add(id));
  };
  const unlink = (map: Map<string, Set<string>>, key: string | undefined, id: string) => {
    const ids = key === undefined ? undefined : map.get(key);
    if (!ids) return;
    ids.delete(id);
    if (ids.size === 0) map.delete(key!);
  };

  // Which identity-provider session each of ours belongs to. Bounded like the
  // sessions themselves, so ids indexed but never stored cannot pile up.
  const idpOf = new LRUCache<string, IdpSession>({
    max: opts.maxEntries,
    dispose: (idp, id) => {
      unlink(bySid, idp.sid, id);
      unlink(bySub, idp.sub, id);
    },
  });

  const store = new MemorySessionStore({ ...opts, onRemove: (id) => idpOf.delete(id) });
  const locks = createLocalLocks();

  return {
    store,
    withRefreshLock: (id, fn, options) => locks.withLock(id, fn, options),
    async index(id, idp) {
      idpOf.set(id, { sub: idp.sub, ...(idp.sid === undefined ? {} : { sid: idp.sid }) });
      if (idp.sid !== undefined) link(bySid, idp.sid, id);
      link(bySub, idp.sub, id);
    },
    async destroyByIdp({ sub, sid }) {
      // By sid when given (narrowed to sub when both are), else by sub. A copy: removal edits the sets.
      const ids = sid !== undefined ? [...(bySid.get(sid) ?? [])] : sub !== undefined ? [...(bySub.get(sub) ?? [])] : [];
      const ofSub = sid !== undefined && sub !== undefined ? (bySub.get(sub) ?? new Set<string>()) : undefined;
      let destroyed = 0;
      for (const id of ids) {
        if (ofSub && !ofSub.has(id)) continue;
        if (store.remove(id)) destroyed++;
        idpOf.delete(id);
      }
      return destroyed;
    },
    healthy: () => true,
    async close() {
      store.clear();
      idpOf.clear();
    },
  };
}

