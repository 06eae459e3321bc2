/**
 * The suite every session backend must pass (after oauth2-proxy's
 * pkg/sessions/tests/session_store_tests.go): the express-session store, the
 * refresh lock and the identity-provider index, through the public interface
 * only. A backend's test file calls `sessionBackendSuite` and adds what is
 * particular to it.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import session, { type SessionData, type Store } from 'express-session';
import type { Test } from 'tap';
import type { SessionBackend } from '../../src/login/store/types.js';

export interface SuiteOptions {
  /** The idle timeout the backends from `make` were given; the expiry tests wait in multiples of it. */
  idleTimeoutMs: number;
}

/** A fresh session id, unique across processes sharing one Redis. */
export const newId = () => `${Date.now().toString(36)}-${randomBytes(9).toString('base64url')}`;

/** Session data shaped like express-session's, with a cookie expiring in `expiresInMs`. */
export function sessionOf(extra: Record<string, unknown> = {}, expiresInMs = 3_600_000): SessionData {
  const cookie = { originalMaxAge: expiresInMs, expires: new Date(Date.now() + expiresInMs).toISOString(), httpOnly: true, secure: true, sameSite: 'lax', path: '/' };
  return { cookie, ...extra } as unknown as SessionData;
}

/** express-session's callback API as promises. */
export function ops(store: Store) {
  const cb =
    <T>(resolve: (v: T) => void, reject: (e: unknown) => void) =>
    (err?: unknown, value?: T) =>
      err ? reject(err) : resolve(value as T);
  return {
    get: (id: string) => new Promise<SessionData | null | undefined>((res, rej) => store.get(id, cb(res, rej))),
    set: (id: string, s: SessionData) => new Promise<void>((res, rej) => store.set(id, s, cb(res, rej))),
    destroy: (id: string) => new Promise<void>((res, rej) => store.destroy(id, cb(res, rej))),
    touch: (id: string, s: SessionData) => new Promise<void>((res, rej) => store.touch!(id, s, cb(res, rej))),
    length: () => new Promise<number>((res, rej) => store.length!(cb(res, rej))),
    clear: () => new Promise<void>((res, rej) => store.clear!(cb(res, rej))),
  };
}

/** A promise with its resolve, to hold a lock holder inside its critical section. */
function gate() {
  let open: () => void = () => {};
  const closed = new Promise<void>((resolve) => (open = resolve));
  return { closed, open };
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(5);
  return cond();
}

export function sessionBackendSuite(t: Test, make: () => Promise<SessionBackend>, { idleTimeoutMs: idle }: SuiteOptions): void {
  const open = async (t: Test) => {
    const backend = await make();
    t.teardown(() => backend.close());
    return { backend, ...ops(backend.store) };
  };

  t.test('store: a session reads back as it was stored', async (t) => {
    const { backend, get, set } = await open(t);
    t.ok(backend.healthy(), 'healthy when reachable');
    const id = newId();
    const session = sessionOf({ tokens: { idToken: 'id', refreshToken: 'rt', expiresAt: 1 }, createdAt: 42 });
    await set(id, session);
    t.same(await get(id), JSON.parse(JSON.stringify(session)));
    t.notOk(await get(newId()), 'an unknown id reads as nothing');
  });

  t.test('store: works under express-session: saved, then found again by its cookie', async (t) => {
    const { backend } = await open(t);
    const middleware = session({ secret: 'suite', store: backend.store, resave: false, saveUninitialized: false, cookie: { maxAge: 60_000 } });
    const server = createServer((req: IncomingMessage & { session?: session.Session & { n?: number } }, res: ServerResponse) =>
      middleware(req as never, res as never, (err?: unknown) => {
        if (err) {
          res.writeHead(503).end();
          return;
        }
        req.session!.n = (req.session!.n ?? 0) + 1;
        res.end(String(req.session!.n));
      }),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => server.close());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const first = await fetch(url);
    const cookie = first.headers.get('set-cookie')!.split(';')[0];
    t.equal(await first.text(), '1');
    const second = await fetch(url, { headers: { cookie } });
    t.equal(await second.text(), '2', 'the session came back from the store');
  });

  t.test('store: set replaces, destroy removes, destroying twice is harmless', async (t) => {
    const { get, set, destroy } = await open(t);
    const id = newId();
    await set(id, sessionOf({ n: 1 }));
    await set(id, sessionOf({ n: 2 }));
    t.equal((await get(id) as unknown as { n: number }).n, 2);
    await destroy(id);
    t.notOk(await get(id));
    await destroy(id);
    t.notOk(await get(id));
  });

  t.test('store: a stored session cannot be changed through an object handed in or out', async (t) => {
    const { get, set } = await open(t);
    const id = newId();
    const session = sessionOf({ user: { name: 'alice', groups: ['a'] } });
    await set(id, session);
    (session as unknown as { user: { name: string } }).user.name = 'mallory';
    const first = (await get(id)) as unknown as { user: { name: string; groups: string[] } };
    first.user.groups.push('system:masters');
    t.same((await get(id) as unknown as { user: unknown }).user, { name: 'alice', groups: ['a'] });
  });

  t.test('store: length counts sessions, clear removes them all', async (t) => {
    const { get, set, length, clear } = await open(t);
    const [a, b] = [newId(), newId()];
    await set(a, sessionOf());
    await set(b, sessionOf());
    t.equal(await length(), 2);
    await clear();
    t.equal(await length(), 0);
    t.notOk(await get(a));
  });

  t.test('expiry: a session ends after the idle timeout', async (t) => {
    const { get, set } = await open(t);
    const id = newId();
    await set(id, sessionOf());
    t.ok(await get(id));
    await sleep(idle * 1.3);
    t.notOk(await get(id));
  });

  t.test('expiry: touch restarts the idle timeout but never revives a session', async (t) => {
    const { get, set, touch, destroy } = await open(t);
    const id = newId();
    await set(id, sessionOf());
    await sleep(idle * 0.5);
    await touch(id, sessionOf());
    await sleep(idle * 0.75);
    t.ok(await get(id), 'alive after more than the idle timeout since set, thanks to touch');
    await sleep(idle * 1.1);
    t.notOk(await get(id), 'gone an idle timeout after the touch');

    const gone = newId();
    await set(gone, sessionOf());
    await destroy(gone);
    await touch(gone, sessionOf());
    t.notOk(await get(gone), 'touching a destroyed session does not bring it back');
  });

  t.test("expiry: the cookie's expiry (absolute lifetime) caps the idle timeout", async (t) => {
    const { get, set, touch } = await open(t);
    const id = newId();
    const session = sessionOf({}, idle * 1.5);
    await set(id, session);
    await sleep(idle * 0.8);
    await touch(id, session);
    await sleep(idle * 0.8);
    await touch(id, session);
    t.notOk(await get(id), 'kept active, but past its cookie expiry');
  });

  t.test('lock: one holder at a time per session; other sessions do not wait', async (t) => {
    const { backend } = await open(t);
    const log: string[] = [];
    const job = (name: string) => async () => {
      log.push(`${name}+`);
      await sleep(100);
      log.push(`${name}-`);
      return name;
    };
    const id = newId();
    const results = await Promise.all([backend.withRefreshLock(id, job('a'), { waitMs: 5_000 }), backend.withRefreshLock(id, job('b'), { waitMs: 5_000 })]);
    t.same(results, ['a', 'b'], 'both ran');
    t.ok(['a+,a-,b+,b-', 'b+,b-,a+,a-'].includes(log.join()), `never inside together: ${log.join()}`);

    log.length = 0;
    await Promise.all([backend.withRefreshLock(newId(), job('x')), backend.withRefreshLock(newId(), job('y'))]);
    t.same(log.slice(0, 2).sort(), ['x+', 'y+'], 'different sessions hold their locks at once');
  });

  t.test('lock: a caller that cannot get it within waitMs gets undefined and its fn never runs', async (t) => {
    const { backend } = await open(t);
    const id = newId();
    const held = gate();
    const holder = backend.withRefreshLock(id, () => held.closed.then(() => 'first'));
    await sleep(20);
    let ran = false;
    const started = Date.now();
    t.equal(await backend.withRefreshLock(id, async () => (ran = true), { waitMs: 50 }), undefined);
    t.notOk(ran);
    t.ok(Date.now() - started < 1_000, 'gave up near waitMs');
    held.open();
    t.equal(await holder, 'first');
    t.equal(await backend.withRefreshLock(id, async () => 'after', { waitMs: 0 }), 'after', 'free again once released');
  });

  t.test('lock: released when fn throws, and the error reaches the caller', async (t) => {
    const { backend } = await open(t);
    const id = newId();
    await t.rejects(backend.withRefreshLock(id, async () => Promise.reject(new Error('refresh failed'))), { message: 'refresh failed' });
    t.equal(await backend.withRefreshLock(id, async () => 'next', { waitMs: 0 }), 'next');
  });

  t.test('lock: the lease frees a lock whose holder never let go, and that holder cannot free its successor', async (t) => {
    const { backend } = await open(t);
    const id = newId();
    const stuck = gate();
    const first = backend.withRefreshLock(id, () => stuck.closed, { leaseMs: 200 });
    await sleep(20);
    const second = gate();
    let secondIn = 0;
    const started = Date.now();
    const successor = backend.withRefreshLock(id, async () => ((secondIn = Date.now()), await second.closed), { waitMs: 5_000, leaseMs: 10_000 });
    t.ok(await until(() => secondIn > 0, 3_000), 'the waiter got the lock');
    t.ok(secondIn - started >= 100, `only after the lease ran out (${secondIn - started} ms)`);
    stuck.open();
    await first;
    t.equal(await backend.withRefreshLock(id, async () => 'intruder', { waitMs: 100 }), undefined, "the old holder's release left the new holder's lock alone");
    second.open();
    await successor;
  });

  t.test('index: destroyByIdp by sid and by sub destroys exactly the matching sessions', async (t) => {
    const { backend, get, set, destroy } = await open(t);
    const sub = `alice-${newId()}`;
    const other = `bob-${newId()}`;
    const [s1, s2, s3, s4] = [newId(), newId(), newId(), newId()];
    for (const id of [s1, s2, s3, s4]) await set(id, sessionOf());
    await backend.index(s1, { sub, sid: 'sid-1' });
    await backend.index(s2, { sub, sid: 'sid-2' });
    await backend.index(s3, { sub: other, sid: 'sid-3' });
    await backend.index(s4, { sub });

    t.equal(await backend.destroyByIdp({ sid: 'sid-1', sub: other }), 0, 'a sid is narrowed by the sub given with it');
    t.equal(await backend.destroyByIdp({ sid: 'sid-1' }), 1);
    t.notOk(await get(s1));
    t.ok(await get(s2), 'the same subject in another provider session stays');

    await destroy(s2); // signed out meanwhile
    t.equal(await backend.destroyByIdp({ sub }), 1, 'counts only sessions that still existed');
    t.notOk(await get(s4));
    t.ok(await get(s3), "another subject's session stays");

    t.equal(await backend.destroyByIdp({ sub: 'nobody' }), 0);
    t.equal(await backend.destroyByIdp({}), 0);
    t.equal(await backend.destroyByIdp({ sid: 'sid-3', sub: other }), 1);
    t.notOk(await get(s3));
  });
}
