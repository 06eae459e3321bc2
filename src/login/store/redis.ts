/**
 * The backend for several replicas: sessions in Redis through connect-redis,
 * plus the refresh lock and the identity-provider index beside them, all
 * under one key prefix:
 *   <prefix>sess:<id>       the session (JSON), expiring after the idle timeout
 *   <prefix>lock:<id>       the refresh lock, expiring after its lease
 *   <prefix>idp:sid:<sid>   set of our session ids for one provider session
 *   <prefix>idp:sub:<sub>   set of our session ids for one subject
 */
import type { Logger } from '../../observe/logger.js';
import { connectRedis } from './redis-client.js';
import { createRedisLocks } from './redis-lock.js';
import { DeadlineRedisStore } from './redis-store.js';
import { entryTtlMs } from './ttl.js';
import type { SessionBackend } from './types.js';

/**
 * Adds a session id to each index set and pushes the set's expiry out. A script,
 * not MULTI: node-redis queues MULTI while disconnected, ignoring disableOfflineQueue.
 */
const INDEX = `for _, key in ipairs(KEYS) do redis.call('sadd', key, ARGV[1]); redis.call('pexpire', key, ARGV[2]) end return 0`;

export interface RedisBackendOptions {
  /** redis:// or rediss:// URL; may carry a password, so it is never logged. */
  url: string;
  /** Prefix of every key written, e.g. `kfp:`. */
  keyPrefix: string;
  /** A session unused for this long ends. Redis counts whole seconds, so this is rounded up. */
  idleTimeoutMs: number;
  /** Absolute session lifetime; the identity-provider index lives at least this long. */
  maxAgeMs: number;
  logger: Logger;
  /** A Redis command without a reply after this long fails and the connection is re-made. Default 1 s. */
  commandTimeoutMs?: number;
  /** How often the connection is checked with PING when idle. Default 5 s. */
  pingIntervalMs?: number;
}

/**
 * A {@link SessionBackend} in Redis, shared by every replica pointed at the same
 * Redis and key prefix. Resolves after the first connection attempt: when Redis
 * is down at start, the backend is returned unhealthy and keeps reconnecting.
 *
 * @example
 * ```ts
 * const backend = await createRedisBackend({ url: 'redis://redis:6379', keyPrefix: 'kfp:',
 *   idleTimeoutMs: 3_600_000, maxAgeMs: 43_200_000, logger });
 * ```
 */
export async function createRedisBackend(opts: RedisBackendOptions): Promise<SessionBackend> {
  const connection = await connectRedis({
    url: opts.url,
    logger: opts.logger,
    commandTimeoutMs: opts.commandTimeoutMs ?? 1_000,
    pingIntervalMs: opts.pingIntervalMs ?? 5_000,
  });
  const { client, call } = connection;
  const store = new DeadlineRedisStore(connection, {
    prefix: `${opts.keyPrefix}sess:`,
    // A function, not a number: given a number, connect-redis uses the cookie's
    // expiry instead whenever there is one, and the idle timeout would never apply.
    ttl: (sess) => Math.ceil(entryTtlMs(sess, opts.idleTimeoutMs) / 1000),
  });
  const sidKey = (sid: string) => `${opts.keyPrefix}idp:sid:${sid}`;
  const subKey = (sub: string) => `${opts.keyPrefix}idp:sub:${sub}`;

  return {
    store,
    withRefreshLock: createRedisLocks(connection, opts.keyPrefix, opts.logger),
    async index(id, idp) {
      const keys = idp.sid === undefined ? [subKey(idp.sub)] : [subKey(idp.sub), sidKey(idp.sid)];
      await call(() => client.eval(INDEX, { keys, arguments: [id, String(opts.maxAgeMs)] }));
    },
    async destroyByIdp({ sub, sid }) {
      // By sid when given (narrowed to sub when both are), else by sub.
      const ids = await call(() =>
        sid !== undefined
          ? sub !== undefined
            ? client.sInter([sidKey(sid), subKey(sub)])
            : client.sMembers(sidKey(sid))
          : sub !== undefined
            ? client.sMembers(subKey(sub))
            : Promise.resolve([]),
      );
      if (ids.length === 0) return 0;
      // One DEL, whose count says how many sessions still existed.
      const destroyed = await call(() => client.del(ids.map((id) => `${store.prefix}${id}`)));
      if (sid !== undefined) await call(() => client.del(sidKey(sid)));
      if (sub !== undefined) await call(() => (sid === undefined ? client.del(subKey(sub)) : client.sRem(subKey(sub), ids)));
      return destroyed;
    },
    healthy: connection.healthy,
    close: connection.close,
  };
}
