// Session cookies under attack, and the session's life: forged, tampered and expired
// cookies are refused; a login callback with the wrong state is refused; rd= cannot
// leave the site; tokens are refreshed before they expire and a failed refresh ends
// the session; back-channel logout ends it at once; no cookie value reaches a log.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { importJWK, SignJWT, type JWK } from 'jose';
import { createLogger } from '../../src/observe/logger.js';
import { browserLogin, launchBrowser, newContext, SESSION_COOKIE, signInAtIssuer } from '../helpers/browser.js';
import { PROXY_CLIENT, startStack, untilReady, type Stack } from '../helpers/stack.js';

const get = (stack: Stack, path: string, cookie: string, accept = 'application/json') =>
  stack.fetch(path, { headers: { cookie: `${SESSION_COOKIE}=${cookie}`, accept } });

t.test('cookies and callbacks', async (t) => {
  const dir = t.testdir();
  const logFile = join(dir, 'proxy.log');
  const auditFile = join(dir, 'audit.log');
  const logger = createLogger('trace', logFile);
  const stack = await startStack(t, {
    login: { dir },
    logger,
    configure: (c) => ({ ...c, audit: { path: auditFile } }),
  });
  await untilReady(stack.proxy);
  const browser = await launchBrowser(t);
  const context = await newContext(browser, t);
  const cookie = await browserLogin(context, stack.proxy.url);

  const ok = await get(stack, '/debug/headers', cookie);
  t.equal(ok.statusCode, 200, 'the real cookie works');
  await ok.body.dump();

  t.test('forged and tampered cookies are refused', async (t) => {
    const tampered = cookie.slice(0, -3) + (cookie.endsWith('AAA') ? 'BBB' : 'AAA');
    const unsigned = decodeURIComponent(cookie).replace(/^s:/, '').split('.')[0];
    for (const [what, value] of [
      ['random', 's%3Aforged.forged'],
      ['tampered signature', tampered],
      ['unsigned session id', unsigned],
      ['empty', ''],
    ]) {
      const res = await get(stack, '/debug/headers', value);
      t.equal(res.statusCode, 401, what);
      await res.body.dump();
      const page = await get(stack, '/debug/headers', value, 'text/html');
      t.equal(page.statusCode, 302, `${what}: a browser is sent to log in`);
      t.match(page.headers.location, /^\/oauth2\/start\?rd=%2Fdebug%2Fheaders$/);
      await page.body.dump();
    }
  });

  t.test('a callback with the wrong state is refused', async (t) => {
    // Two logins started in one browser: the second replaces the first's pending state,
    // so the provider's answer to the first carries a state the session no longer expects.
    const other = await newContext(browser, t);
    const first = await other.newPage();
    await first.goto(`${stack.proxy.url}/oauth2/start`);
    const second = await other.newPage();
    await second.goto(`${stack.proxy.url}/oauth2/start`);
    const callback = first.waitForResponse((r) => r.url().includes('/oauth2/callback'));
    await signInAtIssuer(first);
    const res = await callback;
    t.equal(res.status(), 400, 'state mismatch refused');
    t.match(res.url(), /state=/);
    const api = await other.request.get(`${stack.proxy.url}/oauth2/userinfo`);
    t.equal(api.status(), 401, 'no session was created');
  });

  t.test('rd= can only come back to this site', async (t) => {
    const other = await newContext(browser, t);
    const page = await other.newPage();
    await page.goto(`${stack.proxy.url}/oauth2/start?rd=${encodeURIComponent('https://evil.example/steal')}`);
    await signInAtIssuer(page);
    await page.waitForURL(`${stack.proxy.url}/`);
    t.pass('landed on / instead of the foreign host');
  });

  t.test('back-channel logout ends the session at once', async (t) => {
    const other = await newContext(browser, t);
    const victim = await browserLogin(other, stack.proxy.url);
    const res0 = await get(stack, '/debug/headers', victim);
    t.equal(res0.statusCode, 200);
    await res0.body.dump();

    // The provider would POST this; it is signed with the provider's own key.
    const jwk = stack.issuer.jwks.keys.find((k) => k.kty === 'RSA') as JWK & { kid: string };
    const logoutToken = await new SignJWT({ sub: 'demo', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
      .setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'logout+jwt' })
      .setIssuer(stack.issuer.url)
      .setAudience(PROXY_CLIENT.id)
      .setIssuedAt()
      .setJti(crypto.randomUUID())
      .setExpirationTime('2m')
      .sign(await importJWK(jwk, 'RS256'));

    const bad = await stack.fetch('/oauth2/backchannel_logout', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `logout_token=${logoutToken.slice(0, -4)}AAAA`,
    });
    t.equal(bad.statusCode, 400, 'a tampered logout token is refused');
    await bad.body.dump();
    const still = await get(stack, '/debug/headers', victim);
    t.equal(still.statusCode, 200, 'and ends nothing');
    await still.body.dump();

    const res = await stack.fetch('/oauth2/backchannel_logout', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `logout_token=${logoutToken}`,
    });
    t.equal(res.statusCode, 200);
    await res.body.dump();
    const after = await get(stack, '/debug/headers', victim);
    t.equal(after.statusCode, 401, 'the session is gone');
    await after.body.dump();
  });

  t.test('no cookie value or token in any log', async (t) => {
    await stack.proxy.close();
    logger.flush();
    await new Promise((r) => setTimeout(r, 200));
    const logs = (await readFile(logFile, 'utf8')) + (await readFile(auditFile, 'utf8'));
    t.ok(logs.includes('/oauth2/callback'), 'the login was logged (the scan is not vacuous)');
    const sid = decodeURIComponent(cookie).replace(/^s:/, '').split('.')[0];
    t.notOk(logs.includes(sid), 'no session id');
    t.notOk(logs.includes(decodeURIComponent(cookie)), 'no cookie value');
    t.notMatch(logs, /eyJ[\w-]{10,}\.[\w-]{10,}\./, 'nothing shaped like a JWT');
    t.notMatch(logs, /code=[\w-]{10,}/, 'no authorization code');
  });
});

t.test('expiry and refresh', async (t) => {
  // id_tokens live 20 s; refreshBefore (default 2 m) is longer, so every cookie request refreshes.
  const stack = await startStack(t, {
    login: { dir: t.testdir() },
    idTokenTTL: 20,
    configure: (c) => ({
      ...c,
      authentication: { ...c.authentication, session: { ...c.authentication!.session!, cookie: { ...c.authentication!.session!.cookie, maxAge: '3s' } } },
    }),
  });
  await untilReady(stack.proxy);
  const browser = await launchBrowser(t);
  const context = await newContext(browser, t);
  const cookie = await browserLogin(context, stack.proxy.url);

  const tokenNow = async () => {
    const res = await get(stack, '/oauth2/kubeconfig?download=token', cookie);
    t.equal(res.statusCode, 200);
    return /token: (\S+)/.exec(await res.body.text())![1];
  };
  const first = await tokenNow();
  await new Promise((r) => setTimeout(r, 1100)); // a new iat second for the next id_token
  const second = await tokenNow();
  t.not(first, second, 'the id_token was refreshed before expiry');

  await new Promise((r) => setTimeout(r, 3000));
  const expired = await get(stack, '/debug/headers', cookie);
  t.equal(expired.statusCode, 401, 'past cookie.maxAge the session is over, however active');
  await expired.body.dump();
});

t.test('a failed refresh ends the session', async (t) => {
  const stack = await startStack(t, { login: { dir: t.testdir() }, idTokenTTL: 30 });
  await untilReady(stack.proxy);
  const browser = await launchBrowser(t);
  const context = await newContext(browser, t);
  const cookie = await browserLogin(context, stack.proxy.url);
  // The provider forgets every grant: the refresh token is no longer valid.
  await stack.restartIssuer();
  const res = await get(stack, '/debug/headers', cookie);
  t.equal(res.statusCode, 401);
  await res.body.dump();
  const again = await get(stack, '/debug/headers', cookie);
  t.equal(again.statusCode, 401, 'and it stays ended');
  await again.body.dump();
});
