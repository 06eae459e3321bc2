/**
 * connect-redis' store with every call express-session makes on a request
 * (get, set, touch, destroy) put under the connection's reply deadline, so
 * a Redis that stopped answering fails the request instead of hanging it.
 */
import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import type { RedisConnection } from './redis-client.js';

/** connect-redis's own callback type (it does not export it); loose because express-session's callbacks differ per method. */
type Callback = NonNullable<Parameters<RedisStore['get']>[1]>;

export class DeadlineRedisStore extends RedisStore {
  readonly #call: RedisConnection['call'];

  constructor(connection: RedisConnection, options: { prefix: string; ttl: (sess: SessionData) => number }) {
    super({ client: connection.client, ...options });
    this.#call = connection.call;
  }

  override get(sid: string, cb?: Callback) {
    return settle(this.#call(() => super.get(sid)), cb);
  }

  override set(sid: string, sess: SessionData, cb?: Callback) {
    return settle(this.#call(() => super.set(sid, sess)), cb);
  }

  override touch(sid: string, sess: SessionData, cb?: Callback) {
    return settle(this.#call(() => super.touch(sid, sess)), cb);
  }

  override destroy(sid: string, cb?: Callback) {
    return settle(this.#call(() => super.destroy(sid)), cb);
  }
}

/** connect-redis' convention: with a callback, errors go to it; without, the promise rejects. */
async function settle(result: Promise<unknown>, cb: Callback | undefined): Promise<unknown> {
  let value: unknown;
  try {
    value = await result;
  } catch (err) {
    if (cb) return cb(err, null);
    throw err;
  }
  return cb ? cb(null, value) : value;
}
