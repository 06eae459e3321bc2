/**
 * The node-redis connection behind the Redis backend, set up to fail fast and
 * heal by itself:
 * - while disconnected, commands are refused at once (no offline queue), so a
 *   cookie request gets its 503 now instead of after a hang;
 * - every command has a reply deadline of our own. node-redis' own command
 *   `timeout` stops counting once a command is written, so a frozen Redis or a
 *   half-open connection (a node that vanished without a FIN) would hang
 *   requests for as long as TCP takes to notice: minutes. A missed deadline
 *   drops the connection and makes a new one;
 * - a PING every few seconds through that deadline, so health is right even
 *   when no request is asking;
 * - reconnection never gives up, and an outage is logged once when it starts
 *   and once when it ends, never per request and never with the URL (it may
 *   hold a password). The 'error' listener is also what keeps node-redis'
 *   EventEmitter from throwing and taking the process down.
 */
import { createClient } from 'redis';
import type { Logger } from '../../observe/logger.js';

export type RedisClient = ReturnType<typeof createClient>;

export interface RedisConnectionOptions {
  url: string;
  logger: Logger;
  /** A command without a reply after this long fails and the connection is re-made. */
  commandTimeoutMs: number;
  /** How often an idle connection is checked with PING. */
  pingIntervalMs: number;
}

/** Its functions are plain functions, not methods: the stores take them apart. */
export interface RedisConnection {
  readonly client: RedisClient;
  /** Runs one client call under the reply deadline; a miss rejects with {@link RedisDeadlineError}. */
  readonly call: <T>(command: () => Promise<T>) => Promise<T>;
  /** Connected, and not known to be stuck. */
  readonly healthy: () => boolean;
  readonly close: () => Promise<void>;
}

/** The error of a command that got no reply in time. */
export class RedisDeadlineError extends Error {
  readonly code = 'REDIS_DEADLINE';
  constructor(ms: number) {
    super(`redis did not answer within ${ms} ms`);
    this.name = 'RedisDeadlineError';
  }
}

/** Exponential back-off with jitter, capped at 2 s; never gives up. */
export function reconnectDelay(retries: number): number {
  return Math.min(50 * 2 ** retries, 2_000) + Math.floor(Math.random() * 100);
}

/**
 * Connects, waiting for the first attempt only: if Redis is down at start the
 * connection is returned anyway, unhealthy, and keeps trying. A URL that
 * cannot be parsed throws.
 */
export async function connectRedis(options: RedisConnectionOptions): Promise<RedisConnection> {
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: {
      // The default strategy stops for good after a socket timeout; a proxy must never stop trying.
      reconnectStrategy: reconnectDelay,
      // Only bites when nothing is written for this long: a connection stuck in its
      // handshake with a frozen server. Our PINGs keep a working connection busier than this.
      socketTimeout: options.pingIntervalMs * 3 + options.commandTimeoutMs,
    },
  });
  const log = options.logger.child({ component: 'session-store' });
  let outage = false;
  const down = (code: string) => {
    if (outage) return;
    outage = true;
    log.error({ code }, 'session store (redis) unreachable; cookie requests fail until it is back');
  };
  client.on('error', (err: unknown) => down(errorCode(err)));
  client.on('ready', () => {
    if (!outage) return;
    outage = false;
    log.info('session store (redis) reachable again');
  });

  let closed = false;
  /** Drops a connection that stopped answering; node-redis would wait for TCP to give up. */
  const reconnect = () => {
    if (closed || !client.isOpen || !client.isReady) return; // closing, or already down and reconnecting
    down('REDIS_DEADLINE');
    try {
      client.destroy();
      client.connect().catch(() => {});
    } catch (err) {
      // Runs from a timer: a throw here would be an uncaught exception.
      log.warn({ code: errorCode(err) }, 'could not re-make the redis connection; retrying on the next deadline');
    }
  };

  const call = <T>(command: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new RedisDeadlineError(options.commandTimeoutMs));
        reconnect();
      }, options.commandTimeoutMs);
      Promise.resolve()
        .then(command)
        .then(resolve, reject)
        .finally(() => clearTimeout(timer));
    });

  const pinger = setInterval(() => {
    if (client.isReady) call(() => client.ping()).catch(() => {});
  }, options.pingIntervalMs).unref();

  const firstAttempt = new Promise<void>((resolve) => {
    client.once('ready', resolve);
    client.once('error', () => resolve());
  });
  // connect() settles only once connected (or never, since we always retry); the listeners report progress.
  client.connect().catch(() => {});
  await firstAttempt;

  return {
    client,
    call,
    healthy: () => client.isReady,
    async close() {
      closed = true;
      clearInterval(pinger);
      // destroy, not close: close waits for replies a frozen Redis never sends. By the
      // time the backend closes, the server has drained its requests.
      if (client.isOpen) client.destroy();
    },
  };
}

function errorCode(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; name?: unknown };
    if (typeof e.code === 'string') return e.code;
    if (typeof e.name === 'string') return e.name;
  }
  return 'unknown';
}
