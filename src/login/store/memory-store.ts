/**
 * A bounded in-memory express-session store: at most `maxEntries` sessions,
 * least recently used evicted first, each gone after the idle timeout unless
 * touched. Sessions are kept as JSON text, as Redis keeps them, so a caller
 * can never change a stored session except through `set`, and both backends
 * hand back the same shapes (dates as strings).
 */
import { Store, type SessionData } from 'express-session';
import { LRUCache } from 'lru-cache';
import { entryTtlMs } from './ttl.js';

export interface MemoryStoreOptions {
  maxEntries: number;
  idleTimeoutMs: number;
  /** Called when a session leaves the store for any reason but being overwritten. */
  onRemove?: (id: string) => void;
}

type Callback<T = unknown> = (err?: unknown, value?: T) => void;

export class MemorySessionStore extends Store {
  readonly #cache: LRUCache<string, string>;
  readonly #idleTimeoutMs: number;

  constructor(options: MemoryStoreOptions) {
    super();
    this.#idleTimeoutMs = options.idleTimeoutMs;
    const onRemove = options.onRemove;
    this.#cache = new LRUCache<string, string>({
      max: options.maxEntries,
      ttl: options.idleTimeoutMs,
      // No timers: an expired entry is dropped when next looked at or pushed out by newer ones.
      ttlAutopurge: false,
      updateAgeOnGet: false,
      ...(onRemove ? { dispose: (_v: string, id: string, reason: LRUCache.DisposeReason) => reason !== 'set' && onRemove(id) } : {}),
    });
  }

  /** Removes a session; true if a live one was there. */
  remove(id: string): boolean {
    const live = this.#cache.has(id);
    this.#cache.delete(id);
    return live;
  }

  override get(sid: string, callback: (err: unknown, session?: SessionData | null) => void): void {
    const raw = this.#cache.get(sid);
    // Asynchronous like every other store, so callers cannot come to depend on a synchronous answer.
    process.nextTick(callback, null, raw === undefined ? null : (JSON.parse(raw) as SessionData));
  }

  override set(sid: string, session: SessionData, callback?: Callback): void {
    this.#put(sid, JSON.stringify(session), session);
    if (callback) process.nextTick(callback, null);
  }

  override touch(sid: string, session: SessionData, callback?: () => void): void {
    // Touching never brings back a session that expired or was destroyed meanwhile.
    const raw = this.#cache.get(sid);
    if (raw !== undefined) this.#put(sid, raw, session);
    if (callback) process.nextTick(callback);
  }

  override destroy(sid: string, callback?: Callback): void {
    this.#cache.delete(sid);
    if (callback) process.nextTick(callback, null);
  }

  override length(callback: (err: unknown, length?: number) => void): void {
    this.#cache.purgeStale();
    process.nextTick(callback, null, this.#cache.size);
  }

  override clear(callback?: Callback): void {
    this.#cache.clear();
    if (callback) process.nextTick(callback, null);
  }

  #put(sid: string, raw: string, session: SessionData): void {
    const ttl = entryTtlMs(session, this.#idleTimeoutMs);
    if (ttl <= 0) this.#cache.delete(sid);
    else this.#cache.set(sid, raw, { ttl });
  }
}
