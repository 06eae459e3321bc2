import t from 'tap';
import { createTokenCache, type Verified } from '../../src/authn/token-cache.js';

/** A verifier that counts its calls, answers what `answer` says, and can be held until released. */
function counting(answer: (token: string) => Verified<string> | Error = (tok) => ({ value: `ok:${tok}`, cacheUntil: Infinity })) {
  const calls: string[] = [];
  let release: () => void = () => {};
  let gate: Promise<void> = Promise.resolve();
  return {
    calls,
    hold() {
      gate = new Promise((resolve) => (release = resolve));
    },
    release: () => release(),
    verify: async (token: string): Promise<Verified<string>> => {
      calls.push(token);
      await gate;
      const result = answer(token);
      if (result instanceof Error) throw result;
      return result;
    },
  };
}

t.test('concurrent identical tokens share one verification', async (t) => {
  const v = counting();
  const auth = createTokenCache(v.verify, { ttlMs: 10_000, maxEntries: 10 });
  v.hold();
  const results = Promise.all([auth('a'), auth('a'), auth('a'), auth('b')]);
  v.release();
  t.same(await results, ['ok:a', 'ok:a', 'ok:a', 'ok:b']);
  t.same(v.calls, ['a', 'b']);
});

t.test('a success is served from memory until the TTL', async (t) => {
  let now = 1_000_000;
  const v = counting();
  const auth = createTokenCache(v.verify, { ttlMs: 10_000, maxEntries: 10, now: () => now });
  await auth('a');
  now += 9_999;
  await auth('a');
  t.equal(v.calls.length, 1, 'cached within the TTL');
  now += 1;
  await auth('a');
  t.equal(v.calls.length, 2, 'verified again once the TTL is over');
});

t.test('the TTL never runs past the token exp', async (t) => {
  let now = 1_000_000;
  const v = counting(() => ({ value: 'ok', cacheUntil: now + 3_000 }));
  const auth = createTokenCache(v.verify, { ttlMs: 10_000, maxEntries: 10, now: () => now });
  await auth('a');
  now += 2_999;
  await auth('a');
  t.equal(v.calls.length, 1, 'cached before exp');
  now += 1;
  await auth('a');
  t.equal(v.calls.length, 2, 'verified again at exp, though the TTL is not over');
});

t.test('a result already past its exp is not cached', async (t) => {
  const now = 1_000_000;
  const v = counting(() => ({ value: 'ok', cacheUntil: now }));
  const auth = createTokenCache(v.verify, { ttlMs: 10_000, maxEntries: 10, now: () => now });
  await auth('a');
  await auth('a');
  t.equal(v.calls.length, 2);
});

t.test('failures are not cached, but are shared while in flight', async (t) => {
  const v = counting(() => ({ value: 'rejected' }));
  const auth = createTokenCache(v.verify, { ttlMs: 10_000, maxEntries: 10 });
  v.hold();
  const both = Promise.all([auth('bad'), auth('bad')]);
  v.release();
  t.same(await both, ['rejected', 'rejected']);
  t.equal(v.calls.length, 1, 'shared');
  await auth('bad');
  t.equal(v.calls.length, 2, 'not cached');
});

t.test('a thrown error reaches every waiter and is not cached', async (t) => {
  const v = counting(() => new Error('boom'));
  const auth = createTokenCache(v.verify, { ttlMs: 10_000, maxEntries: 10 });
  v.hold();
  const both = [auth('x'), auth('x')];
  v.release();
  for (const p of both) await t.rejects(p, /boom/);
  t.equal(v.calls.length, 1);
  await t.rejects(auth('x'), /boom/);
  t.equal(v.calls.length, 2);
});

t.test('a verify that throws synchronously is handled like any failure', async (t) => {
  let calls = 0;
  const auth = createTokenCache<string>(
    (() => {
      calls++;
      throw new Error('sync');
    }),
    { ttlMs: 10_000, maxEntries: 10 },
  );
  await t.rejects(auth('x'), /sync/);
  await t.rejects(auth('x'), /sync/);
  t.equal(calls, 2, 'nothing stuck in flight');
});

t.test('the cache holds at most maxEntries, dropping the least recently used', async (t) => {
  const v = counting();
  const auth = createTokenCache(v.verify, { ttlMs: 10_000, maxEntries: 2 });
  await auth('a');
  await auth('b');
  await auth('a'); // a is now the most recently used
  await auth('c'); // evicts b
  t.same(v.calls, ['a', 'b', 'c']);
  await auth('a');
  t.same(v.calls, ['a', 'b', 'c'], 'a still cached');
  await auth('b');
  t.same(v.calls, ['a', 'b', 'c', 'b'], 'b was dropped');
});

t.test('ttl 0 or maxEntries 0 turns caching off but keeps sharing', async (t) => {
  for (const opts of [{ ttlMs: 0, maxEntries: 10 }, { ttlMs: 10_000, maxEntries: 0 }]) {
    const v = counting();
    const auth = createTokenCache(v.verify, opts);
    v.hold();
    const both = Promise.all([auth('a'), auth('a')]);
    v.release();
    await both;
    await auth('a');
    t.equal(v.calls.length, 2, JSON.stringify(opts));
  }
});

t.test('tokens are not kept as keys', async (t) => {
  // Every Map the cache fills (the LRU's index, the in-flight table) must see keyed hashes only.
  const token = 'eyJ.secret-token.sig';
  const seen: unknown[] = [];
  // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be restored, and called with .call(this)
  const originalSet = Map.prototype.set;
  Map.prototype.set = function (this: Map<unknown, unknown>, key: unknown, value: unknown) {
    seen.push(key);
    return originalSet.call(this, key, value);
  };
  try {
    const auth = createTokenCache(async () => ({ value: 1, cacheUntil: Infinity }), { ttlMs: 10_000, maxEntries: 10 });
    await auth(token);
  } finally {
    Map.prototype.set = originalSet;
  }
  t.ok(seen.length > 0, 'keys were stored');
  t.notOk(seen.some((k) => typeof k === 'string' && k.includes('secret-token')), 'no key contains the token');
});
