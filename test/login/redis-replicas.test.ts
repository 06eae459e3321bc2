// Sessions in a real Redis: a proxy restart logs nobody out, two replicas accept each
// other's cookies and refresh a session once between them, and with Redis down cookie
// requests fail closed with 503 while bearer requests keep working.
import t from 'tap';
import { silentLogger } from '../../src/observe/logger.js';
import { startProxy, type RunningProxy } from '../../src/server.js';
import type { Config } from '../../src/config/schema.js';
import { browserLogin, launchBrowser, newContext, SESSION_COOKIE } from '../helpers/browser.js';
import { startRedis } from '../helpers/redis.js';
import { startStack, untilReady, type Stack } from '../helpers/stack.js';

/** Another replica of the stack's proxy: same configuration, its own port. */
async function replica(t: { teardown(fn: () => unknown): void }, config: Config, port = 0): Promise<RunningProxy> {
  const copy = structuredClone(config);
  copy.listen.address = `127.0.0.1:${port}`;
  const proxy = await startProxy(copy, silentLogger);
  t.teardown(() => proxy.close());
  await untilReady(proxy);
  return proxy;
}

const statusOf = async (stack: Stack, base: string, cookie: string, init: { authorization?: string } = {}) => {
  const { request } = await import('undici');
  const res = await request(`${base}/debug/headers`, {
    dispatcher: stack.client,
    headers: { accept: 'application/json', ...(cookie ? { cookie: `${SESSION_COOKIE}=${cookie}` } : {}), ...(init.authorization ? { authorization: init.authorization } : {}) },
  });
  await res.body.dump();
  return res.statusCode;
};

t.test('sessions shared through Redis', async (t) => {
  const redis = await startRedis(t);
  // id_tokens live 30 s and refreshBefore is 2 m: every cookie request needs a refresh.
  const stack = await startStack(t, { login: { dir: t.testdir(), redisURL: redis.url }, idTokenTTL: 30 });
  await untilReady(stack.proxy);
  const browser = await launchBrowser(t);
  const cookie = await browserLogin(await newContext(browser, t), stack.proxy.url);
  const port = Number(new URL(stack.proxy.url).port);
  t.equal(await statusOf(stack, stack.proxy.url, cookie), 200, 'logged in');

  t.test('two replicas accept each other\'s cookies and refresh once between them', async (t) => {
    const second = await replica(t, stack.config);
    // Twenty concurrent requests across both replicas, each needing a refresh. The
    // provider rotates refresh tokens and revokes the grant when one is used twice,
    // so without the shared lock some of these would end the session.
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => statusOf(stack, i % 2 ? second.url : stack.proxy.url, cookie)),
    );
    t.same(statuses, Array(20).fill(200));
    t.equal(await statusOf(stack, second.url, cookie), 200, 'and the session lives on');
  });

  t.test('a proxy restart logs nobody out', async (t) => {
    await stack.proxy.close();
    const restarted = await replica(t, stack.config, port);
    t.equal(await statusOf(stack, restarted.url, cookie), 200);
  });

  t.test('Redis down: cookie requests 503, bearer requests pass; Redis back: cookies are checked again', async (t) => {
    const proxy = await replica(t, stack.config);
    const bearer = `Bearer ${await stack.mint()}`;
    await redis.stop();
    t.equal(await statusOf(stack, proxy.url, cookie), 503, 'fail closed');
    t.equal(await statusOf(stack, proxy.url, '', { authorization: bearer }), 200, 'bearer unaffected');
    await redis.start();
    let status = 503;
    for (let i = 0; i < 50 && status === 503; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await statusOf(stack, proxy.url, cookie);
    }
    // The test's Redis keeps nothing on disk, so the session itself is gone: 401, not 503.
    t.equal(status, 401, 'sessions are checked again once Redis is back');
  });
});
