/**
 * The refresh lock shared by every replica: `SET key token NX PX lease`, polled
 * with a short back-off until the wait runs out, released only by its holder
 * (compare-and-delete in Lua), so a holder whose lease already ran out cannot
 * free the lock another replica has since taken.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../observe/logger.js';
import { lockOptions, type LockOptions } from './lock-options.js';
import type { RedisConnection } from './redis-client.js';

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export function createRedisLocks({ client, call }: RedisConnection, keyPrefix: string, logger: Logger) {
  return async function withLock<T>(id: string, fn: () => Promise<T>, options?: LockOptions): Promise<T | undefined> {
    const { waitMs, leaseMs } = lockOptions(options);
    const key = `${keyPrefix}lock:${id}`;
    const token = randomBytes(16).toString('base64url');
    const deadline = Date.now() + waitMs;
    // Redis errors propagate: a lock we cannot ask for is a store that is down.
    for (let attempt = 0; ; attempt++) {
      const taken = await call(() => client.set(key, token, { condition: 'NX', expiration: { type: 'PX', value: leaseMs } }));
      if (taken === 'OK') break;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await sleep(Math.min(10 * 2 ** attempt, 100, left));
    }
    try {
      return await fn();
    } finally {
      // The result stands even if the release fails; the lease frees the lock soon enough.
      await call(() => client.eval(RELEASE, { keys: [key], arguments: [token] })).catch((err: unknown) => {
        logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not release a session refresh lock; it ends with its lease');
      });
    }
  };
}
