import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import t from 'tap';
import { createRedisBackend } from '../../src/login/store/redis.js';
import { silentLogger, type Logger } from '../../src/observe/logger.js';
import { startRedis } from '../helpers/redis.js';
import { newId, ops, sessionBackendSuite, sessionOf } from './store-suite.js';

const redis = await startRedis(t);
// Redis expiries count whole seconds (connect-redis uses EX), so the suite waits in seconds here.
const idleTimeoutMs = 1_000;
let prefixes = 0;
const make = (keyPrefix = `kfp-test-${prefixes++}:`, logger: Logger = silentLogger, extra: { pingIntervalMs?: number } = {}) =>
  createRedisBackend({ url: redis.url, keyPrefix, idleTimeoutMs, maxAgeMs: 60_000, logger, ...extra });

sessionBackendSuite(t, () => make(), { idleTimeoutMs });

async function until(cond: () => boolean, ms: number): Promise<number> {
  const started = Date.now();
  while (!cond()) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

t.test('two replicas on one Redis share sessions, the lock and the index', async (t) => {
  const [a, b] = [await make('kfp-shared:'), await make('kfp-shared:')];
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const [A, B] = [ops(a.store), ops(b.store)];
  const id = newId();
  await A.set(id, sessionOf({ createdAt: 7 }));
  t.equal(((await B.get(id)) as unknown as { createdAt: number }).createdAt, 7, "B reads A's session");
  await B.destroy(id);
  t.notOk(await A.get(id), "A sees B's destroy");

  let release: () => void = () => {};
  const held = a.withRefreshLock(id, () => new Promise<string>((r) => (release = () => r('a'))));
  await sleep(20);
  t.equal(await b.withRefreshLock(id, async () => 'b', { waitMs: 100 }), undefined, 'B waits out while A holds the lock');
  const waiting = b.withRefreshLock(id, async () => 'b', { waitMs: 5_000 });
  await sleep(50);
  release();
  t.same(await Promise.all([held, waiting]), ['a', 'b'], 'B gets it once A lets go');

  const s = newId();
  await A.set(s, sessionOf());
  await a.index(s, { sub: 'carol', sid: 'idp-session' });
  t.equal(await b.destroyByIdp({ sid: 'idp-session' }), 1, 'back-channel logout on B ends the session A made');
  t.notOk(await A.get(s));
});

t.test('outage: fail fast while Redis is down, heal when it is back, never crash', async (t) => {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const backend = await make(undefined, logger);
  t.teardown(() => backend.close());
  const store = ops(backend.store);
  const secret = 'refresh-token-that-must-never-be-logged';
  const id = newId();
  await store.set(id, sessionOf({ tokens: { idToken: secret, refreshToken: secret, expiresAt: 0 } }));

  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  process.on('uncaughtException', onCrash).on('unhandledRejection', onCrash);
  t.teardown(() => process.off('uncaughtException', onCrash).off('unhandledRejection', onCrash));

  await redis.stop();
  const noticed = await until(() => !backend.healthy(), 1_000);
  t.pass(`healthy() false ${noticed} ms after Redis died`);

  const fast = async (what: string, op: () => Promise<unknown>) => {
    const started = Date.now();
    await t.rejects(op(), `${what} fails`);
    t.ok(Date.now() - started < 1_000, `${what} failed in ${Date.now() - started} ms`);
  };
  await fast('store.get', () => store.get(id));
  await fast('store.set', () => store.set(newId(), sessionOf()));
  await fast('store.touch', () => store.touch(id, sessionOf()));
  await fast('withRefreshLock', () => backend.withRefreshLock(id, async () => 'never'));
  await fast('index', () => backend.index(id, { sub: 'x' }));
  await fast('destroyByIdp', () => backend.destroyByIdp({ sub: 'x' }));

  // A replica starting during the outage starts, unhealthy, instead of failing or hanging.
  const startedLate = Date.now();
  const late = await make('kfp-late:');
  t.teardown(() => late.close());
  t.notOk(late.healthy(), `a backend made during the outage is unhealthy (returned in ${Date.now() - startedLate} ms)`);

  await sleep(1_500); // several reconnect attempts
  await redis.start();
  const healed = await until(() => backend.healthy() && late.healthy(), 5_000);
  t.pass(`healthy again ${healed} ms after Redis came back`);
  const fresh = newId();
  await store.set(fresh, sessionOf({ n: 1 }));
  t.ok(await store.get(fresh), 'works again (Redis came back empty: no persistence in the test)');
  t.ok(await backend.withRefreshLock(fresh, async () => true), 'the lock works again');

  const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string });
  t.equal(logged.filter((l) => l.level >= 50).length, 1, 'one error line for the whole outage');
  t.equal(logged.filter((l) => /reachable again/.test(l.msg)).length, 1, 'one line when it is back');
  t.notOk(lines.join('\n').includes(secret), 'no session contents in the logs');
  t.notOk(lines.join('\n').includes(redis.url), 'no Redis URL in the logs');
  t.same(crashes, [], 'no uncaught error or unhandled rejection');
});

t.test('frozen Redis (connection open, no answers): fail within the deadline, reconnect, heal', async (t) => {
  const busy = await make();
  const idle = await make(undefined, silentLogger, { pingIntervalMs: 200 });
  t.teardown(() => Promise.all([busy.close(), idle.close()]));
  const store = ops(busy.store);
  const id = newId();
  await store.set(id, sessionOf({ n: 1 }));
  redis.pause();
  t.teardown(() => redis.resume());

  const started = Date.now();
  await t.rejects(store.get(id), { code: 'REDIS_DEADLINE' }, 'get fails');
  const took = Date.now() - started;
  t.ok(took < 1_500, `at the 1 s reply deadline (${took} ms)`);
  t.notOk(busy.healthy(), 'the stuck connection was dropped: unhealthy');
  const again = Date.now();
  await t.rejects(store.get(id), 'the next get fails too');
  t.ok(Date.now() - again < 100, 'and fails at once, while reconnecting');
  t.pass(`an idle backend notices by its PING within ${await until(() => !idle.healthy(), 3_000)} ms`);

  redis.resume();
  t.pass(`healthy again ${await until(() => busy.healthy() && idle.healthy(), 5_000)} ms after Redis thawed`);
  // A fresh connection: nothing left over from the stuck one can answer a later command.
  // (The session from before has passed its 1 s idle timeout by now.)
  const other = newId();
  await store.set(id, sessionOf({ n: 1 }));
  await store.set(other, sessionOf({ n: 2 }));
  const [a, b] = (await Promise.all([store.get(id), store.get(other)])) as unknown as { n: number }[];
  t.same([a?.n, b?.n], [1, 2], 'replies match their commands');
});
