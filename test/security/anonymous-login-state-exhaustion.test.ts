// Attack class: anonymous login-state exhaustion (CWE-400, uncontrolled resource
// consumption; CWE-770, allocation without limits). No public advisory of our own; the
// same class as oauth2-proxy keeping its pending login in a cookie instead of the store.
// Every anonymous GET <prefix>/start used to store a session (state, nonce, PKCE
// verifier): a loop of them evicted every signed-in person from the bounded memory
// store and grew Redis without bound. A login now starts without touching the store.
import { join } from 'node:path';
import t from 'tap';
import { Pool } from 'undici';
import { createClient } from 'redis';
import { browserLogin, launchBrowser, newContext } from '../helpers/browser.js';
import { startRedis } from '../helpers/redis.js';
import { startStack, untilReady, type Stack } from '../helpers/stack.js';

/** Anonymous /start requests; several times the memory store's size, a few seconds of wall time. */
const FLOOD = 20_000;
const CONCURRENCY = 64;

/**
 * `count` anonymous GET /oauth2/start over keep-alive connections, `CONCURRENCY` at a time.
 * Returns how the proxy answered (status → count) and the rate.
 */
async function floodStart(stack: Stack, count: number): Promise<{ statuses: Record<number, number>; perSecond: number }> {
  const pool = new Pool(stack.proxy.url, { connect: { ca: stack.servingCA }, connections: 16, pipelining: 1 });
  const statuses: Record<number, number> = {};
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      next++;
      const res = await pool.request({ path: '/oauth2/start?rd=%2Fsomewhere', method: 'GET' });
      await res.body.dump();
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return { statuses, perSecond: Math.round(count / seconds) };
}

const statusWith = async (stack: Stack, cookie: string) => {
  const res = await stack.fetch('/debug/headers', { headers: { cookie, accept: 'application/json' } });
  await res.body.dump();
  return res.statusCode;
};

t.test('memory store: a flood of anonymous logins evicts nobody', async (t) => {
  const maxEntries = 50;
  const dir = t.testdir();
  const stack = await startStack(t, {
    login: { dir },
    configure: (c) => ({
      ...c,
      audit: { path: join(dir, 'audit.log') },
      authentication: { ...c.authentication, session: { ...c.authentication!.session!, store: { type: 'memory', maxEntries } } },
    }),
  });
  await untilReady(stack.proxy);
  const name = stack.config.authentication.session!.cookie.name;
  const browser = await launchBrowser(t);
  const cookie = `${name}=${await browserLogin(await newContext(browser, t), stack.proxy.url, name)}`;
  t.equal(await statusWith(stack, cookie), 200, 'signed in');

  const { statuses, perSecond } = await floodStart(stack, FLOOD);
  t.comment(`${FLOOD} anonymous /start requests at ${perSecond}/s`);
  t.same(statuses, { 303: FLOOD }, 'every request started a login (the flood reached /start)');
  t.equal(await statusWith(stack, cookie), 200, `still signed in after ${FLOOD} anonymous logins with maxEntries ${maxEntries}`);
});

t.test('redis store: a flood of anonymous logins writes no key', async (t) => {
  const redis = await startRedis(t);
  const dir = t.testdir();
  const stack = await startStack(t, { login: { dir, redisURL: redis.url }, configure: (c) => ({ ...c, audit: { path: join(dir, 'audit.log') } }) });
  await untilReady(stack.proxy);
  const name = stack.config.authentication.session!.cookie.name;
  const browser = await launchBrowser(t);
  const cookie = `${name}=${await browserLogin(await newContext(browser, t), stack.proxy.url, name)}`;
  t.equal(await statusWith(stack, cookie), 200, 'signed in');

  const keys = createClient({ url: redis.url });
  await keys.connect();
  t.teardown(() => keys.close());
  const before = await keys.dbSize();
  t.ok(before > 0, `the person's session is in Redis (${before} keys): the count below is not vacuous`);

  const count = FLOOD / 4;
  const { statuses, perSecond } = await floodStart(stack, count);
  t.comment(`${count} anonymous /start requests at ${perSecond}/s`);
  t.same(statuses, { 303: count }, 'every request started a login');
  t.equal(await keys.dbSize(), before, 'no key was written by the flood');
  t.equal(await statusWith(stack, cookie), 200, 'still signed in');
});
