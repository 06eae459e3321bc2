// The pending login's cookie: sealed and opened by the module, then as the callback
// sees it. A tampered, expired or foreign (another secret's) cookie, a missing one, or a
// replayed callback gets the 400 "expired or already used" page; only a good cookie
// whose state matches reaches the code exchange.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test as Tap } from 'tap';
import { createLoginState, LOGIN_STATE_COOKIE, LOGIN_STATE_LIFETIME_MS } from '../../src/login/login-state.js';
import { SESSION_COOKIE, startLoginByRequest } from '../helpers/browser.js';
import { startStack, untilReady } from '../helpers/stack.js';

const SECRET = 'a-cookie-secret-of-at-least-32-bytes-for-tests';
const OTHER_SECRET = 'another-cookie-secret-of-at-least-32-bytes-!!';
const pending = { state: 'state-1', nonce: 'nonce-1', codeVerifier: 'verifier-1', returnTo: '/back' };
/** The name=value pair of a Set-Cookie line. */
const pairOf = (setCookie: string) => setCookie.split(';')[0];
const valueOf = (setCookie: string) => pairOf(setCookie).slice(LOGIN_STATE_COOKIE.length + 1);

t.test('sealed and opened', async (t) => {
  const state = createLoginState({ secrets: [SECRET] });
  const line = await state.seal(pending);
  t.match(line, new RegExp(`^${LOGIN_STATE_COOKIE}=[\\w-]+\\.\\.[\\w-]+\\.[\\w-]+\\.[\\w-]+; Max-Age=600; Path=/; HttpOnly; Secure; SameSite=Lax$`), 'a compact JWE (dir: no encrypted key), __Host- attributes');
  t.notMatch(line, /Domain=/i, 'no Domain');
  t.notOk(line.includes('verifier-1') || line.includes(Buffer.from('verifier-1').toString('base64url')), 'the verifier is not readable');
  t.same(await state.open(pairOf(line)), { kind: 'found', pending });
  t.same(await state.open(`a=1; ${pairOf(line)}; b=2`), { kind: 'found', pending }, 'among other cookies');

  const value = valueOf(line);
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  for (const [what, header] of [
    ['a changed ciphertext byte', `${LOGIN_STATE_COOKIE}=${flip(value, value.length - 30)}`],
    ['a changed tag', `${LOGIN_STATE_COOKIE}=${flip(value, value.length - 2)}`],
    ['garbage', `${LOGIN_STATE_COOKIE}=not-a-jwe`],
    ['empty', `${LOGIN_STATE_COOKIE}=`],
  ] as const) {
    t.same(await state.open(header), { kind: 'invalid' }, what);
  }
  t.same(await state.open(undefined), { kind: 'missing' }, 'no Cookie header');
  t.same(await state.open('other=1'), { kind: 'missing' }, 'no login-state cookie');
  t.same(await state.open(`${pairOf(line)}; ${pairOf(line)}`), { kind: 'ambiguous' }, 'twice, even with the same value');

  const foreign = createLoginState({ secrets: [OTHER_SECRET] });
  t.same(await foreign.open(pairOf(line)), { kind: 'invalid' }, "another secret's cookie does not open");
  const rotated = createLoginState({ secrets: [OTHER_SECRET, SECRET] });
  t.same(await rotated.open(pairOf(line)), { kind: 'found', pending }, 'an older secret still opens (rotation)');
  t.same(await state.open(pairOf(await rotated.seal(pending))), { kind: 'invalid' }, 'the first secret seals');

  let now = Date.now();
  const clocked = createLoginState({ secrets: [SECRET], now: () => now });
  const sealed = pairOf(await clocked.seal(pending));
  now += LOGIN_STATE_LIFETIME_MS - 1_000;
  t.equal((await clocked.open(sealed)).kind, 'found', 'opens within its lifetime');
  now += 2_000;
  t.same(await clocked.open(sealed), { kind: 'invalid' }, 'expired after it');
});

t.test('consumed once', async (t) => {
  const state = createLoginState({ secrets: [SECRET] });
  t.equal(state.consume('s'), true);
  t.equal(state.consume('s'), false, 'a second use is refused');
  t.equal(state.consume('t'), true, 'another login is not affected');
});

t.test('a return target too long for a cookie falls back to /', async (t) => {
  const state = createLoginState({ secrets: [SECRET] });
  const long = `/${'x'.repeat(3000)}`;
  const line = await state.seal({ ...pending, returnTo: long });
  t.ok(pairOf(line).length < 4096, `the cookie stays under the browsers' 4096 bytes (${pairOf(line).length})`);
  t.match(await state.open(pairOf(line)), { kind: 'found', pending: { returnTo: '/' } });
  const fits = `/${'y'.repeat(2000)}`;
  const kept = await state.seal({ ...pending, returnTo: fits });
  t.ok(pairOf(kept).length < 4096, `a 2 KB target fits (${pairOf(kept).length} bytes)`);
  t.match(await state.open(pairOf(kept)), { kind: 'found', pending: { returnTo: fits } });
});

t.test('the callback', async (t) => {
  const dir = t.testdir();
  const stack = await startStack(t, { login: { dir } });
  await untilReady(stack.proxy);
  const secret = (await readFile(join(dir, 'cookie-secret'), 'utf8')).trim();

  /** A login started the way a browser starts one: its cookie and its state. */
  const startLogin = async (t: Tap) => {
    const started = await startLoginByRequest(stack);
    t.equal(started.status, 303);
    t.same(started.setCookies.map((c) => c.split('=')[0]), [LOGIN_STATE_COOKIE], 'start sets the login-state cookie and no session cookie');
    return { cookie: started.loginCookie!, state: started.state };
  };
  const callback = async (state: string, cookie?: string) => {
    const res = await stack.fetch(`/oauth2/callback?code=not-a-real-code&state=${encodeURIComponent(state)}`, {
      headers: { accept: 'text/html', ...(cookie === undefined ? {} : { cookie }) },
    });
    const setCookies = [res.headers['set-cookie'] ?? []].flat();
    return { status: res.statusCode, body: await res.body.text(), setCookies, referrerPolicy: res.headers['referrer-policy'] };
  };
  const EXPIRED = /expired or was already used/;
  const EXCHANGED = /could not be verified/;

  await t.test('no cookie', async (t) => {
    const { state } = await startLogin(t);
    const res = await callback(state);
    t.equal(res.status, 400);
    t.match(res.body, EXPIRED);
    t.equal(res.referrerPolicy, 'no-referrer', "the page at the callback's URL (it holds the code) sends no Referer, not even to us");
  });

  await t.test('a tampered cookie', async (t) => {
    const { cookie, state } = await startLogin(t);
    const at = cookie.length - 30;
    const res = await callback(state, cookie.slice(0, at) + (cookie[at] === 'A' ? 'B' : 'A') + cookie.slice(at + 1));
    t.equal(res.status, 400);
    t.match(res.body, EXPIRED);
    t.ok(res.setCookies.some((c) => c.startsWith(`${LOGIN_STATE_COOKIE}=;`)), 'and it is cleared');
  });

  await t.test("another secret's cookie, and an expired one", async (t) => {
    const { state } = await startLogin(t);
    const forged = { ...pending, state };
    const foreign = await callback(state, pairOf(await createLoginState({ secrets: [OTHER_SECRET] }).seal(forged)));
    t.equal(foreign.status, 400);
    t.match(foreign.body, EXPIRED, 'foreign');
    const old = createLoginState({ secrets: [secret], now: () => Date.now() - LOGIN_STATE_LIFETIME_MS - 60_000 });
    const expired = await callback(state, pairOf(await old.seal(forged)));
    t.equal(expired.status, 400);
    t.match(expired.body, EXPIRED, 'expired');
    // The control: the same cookie sealed now with the proxy's secret is accepted, so the
    // two refusals above are the secret's and the clock's doing.
    const fresh = await callback(state, pairOf(await createLoginState({ secrets: [secret] }).seal(forged)));
    t.match(fresh.body, EXCHANGED, 'sealed now with our secret: it reaches the code exchange');
  });

  await t.test('a good cookie reaches the code exchange once; a replay finds nothing', async (t) => {
    const { cookie, state } = await startLogin(t);
    const first = await callback(state, cookie);
    t.equal(first.status, 400, 'the made-up code is refused by the provider');
    t.match(first.body, EXCHANGED);
    t.ok(first.setCookies.some((c) => c.startsWith(`${LOGIN_STATE_COOKIE}=;`)), 'the cookie is cleared');
    t.notOk(first.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`)), 'no session for a failed login');
    const replay = await callback(state, cookie);
    t.equal(replay.status, 400);
    t.match(replay.body, EXPIRED, 'the replay is refused before the provider is asked');
  });

  await t.test("another tab's older login", async (t) => {
    const older = await startLogin(t);
    const newer = await startLogin(t);
    const res = await callback(older.state, newer.cookie);
    t.equal(res.status, 400);
    t.match(res.body, EXPIRED);
    t.same(res.setCookies, [], "the newer login's cookie is left alone");
    t.match((await callback(newer.state, newer.cookie)).body, EXCHANGED, 'and still works');
  });
});
