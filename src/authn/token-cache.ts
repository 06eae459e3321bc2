/**
 * A short-lived cache in front of token verification, shaped like
 * kube-apiserver's cached token authenticator
 * (k8s.io/apiserver/pkg/authentication/token/cache): entries are keyed by an
 * HMAC of the token under a random per-process key, only successes are kept,
 * and concurrent requests with the same token share one verification.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** What one verification produced, and how long it may be remembered. */
export interface Verified<T> {
  readonly value: T;
  /**
   * Epoch ms after which the value must not be served (a token's `exp`).
   * Leave it out for results that must not be cached at all, i.e. failures:
   * a rejected token may become valid a moment later (a rotated key, an
   * issuer that was not ready yet).
   */
  readonly cacheUntil?: number;
}

/** How {@link createTokenCache} remembers results. */
export interface TokenCacheOptions {
  /** The longest a result is remembered; 0 turns caching off (sharing stays). */
  readonly ttlMs: number;
  /** The most results remembered, least recently used dropped first; 0 turns caching off. */
  readonly maxEntries: number;
  /** Epoch-ms clock; tests replace it. */
  readonly now?: () => number;
}

interface Entry<T> {
  readonly value: T;
  readonly expiresAt: number;
}

/**
 * Wraps `verify` so that a token verified successfully in the last
 * `min(ttlMs, cacheUntil - now)` ms is answered from memory, and concurrent
 * calls with the same token wait for one verification instead of each running
 * their own (their result is shared whether it succeeds, fails or throws).
 *
 * @example
 * const authenticate = createTokenCache(
 *   async (token) => ({ value: await check(token), cacheUntil: expOf(token) }),
 *   { ttlMs: 10_000, maxEntries: 10_000 },
 * );
 */
export function createTokenCache<T>(
  verify: (token: string) => Promise<Verified<T>>,
  opts: TokenCacheOptions,
): (token: string) => Promise<T> {
  const now = opts.now ?? Date.now;
  // The key is a keyed hash, never the token: neither a heap dump nor anyone
  // who can hash a guess learns a token from the cache.
  const secret = randomBytes(32);
  const cache = opts.ttlMs > 0 && opts.maxEntries > 0 ? new LRUCache<string, Entry<T>>({ max: opts.maxEntries }) : undefined;
  const inflight = new Map<string, Promise<T>>();

  const remember = (key: string, result: Verified<T>): void => {
    if (!cache || result.cacheUntil === undefined) return;
    const expiresAt = Math.min(now() + opts.ttlMs, result.cacheUntil);
    if (expiresAt > now()) cache.set(key, { value: result.value, expiresAt });
  };

  return (token) => {
    const key = createHmac('sha256', secret).update(token).digest('base64url');
    const hit = cache?.get(key);
    if (hit) {
      if (hit.expiresAt > now()) return Promise.resolve(hit.value);
      cache?.delete(key);
    }
    const pending = inflight.get(key);
    if (pending) return pending;

    // Started from a resolved promise so that even a verify that throws at
    // once is registered, shared and forgotten like any other.
    const verification = Promise.resolve(token)
      .then(verify)
      .then((result) => {
        remember(key, result);
        return result.value;
      });
    inflight.set(key, verification);
    const forget = () => inflight.delete(key);
    verification.then(forget, forget);
    return verification;
  };
}
