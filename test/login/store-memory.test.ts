import t from 'tap';
import { createMemoryBackend } from '../../src/login/store/memory.js';
import { newId, ops, sessionBackendSuite, sessionOf } from './store-suite.js';

const idleTimeoutMs = 400;
sessionBackendSuite(t, async () => createMemoryBackend({ maxEntries: 100, idleTimeoutMs }), { idleTimeoutMs });

t.test('bounded: never more than maxEntries, least recently used evicted first', async (t) => {
  const backend = createMemoryBackend({ maxEntries: 3, idleTimeoutMs: 60_000 });
  t.teardown(() => backend.close());
  const { get, set, length } = ops(backend.store);
  const ids = Array.from({ length: 5 }, newId);
  await set(ids[0], sessionOf());
  await set(ids[1], sessionOf());
  await set(ids[2], sessionOf());
  await get(ids[0]); // used: now ids[1] is the least recently used
  await set(ids[3], sessionOf());
  await set(ids[4], sessionOf());
  t.equal(await length(), 3);
  t.notOk(await get(ids[1]));
  t.notOk(await get(ids[2]));
  for (const id of [ids[0], ids[3], ids[4]]) t.ok(await get(id));
});

t.test('bounded: the idp index forgets evicted sessions', async (t) => {
  const backend = createMemoryBackend({ maxEntries: 2, idleTimeoutMs: 60_000 });
  t.teardown(() => backend.close());
  const { get, set } = ops(backend.store);
  const [a, b, c] = [newId(), newId(), newId()];
  for (const id of [a, b, c]) {
    await set(id, sessionOf());
    await backend.index(id, { sub: 'alice', sid: id });
  }
  t.notOk(await get(a), 'evicted');
  t.equal(await backend.destroyByIdp({ sid: a }), 0);
  t.equal(await backend.destroyByIdp({ sub: 'alice' }), 2);

  // Ids indexed but never stored are bounded too.
  for (let i = 0; i < 50; i++) await backend.index(newId(), { sub: 'ghost' });
  t.equal(await backend.destroyByIdp({ sub: 'ghost' }), 0);
});
