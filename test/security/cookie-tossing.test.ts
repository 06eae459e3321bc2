// Attack class: cookie tossing. A page on a sibling subdomain (any host under the same
// registrable domain: a user's app, a preview deployment) may set a cookie for the parent
// domain with our cookie's name; the browser then sends two cookies of that name, and a
// server that takes the first is logged in as whoever planted it (session fixation, login
// CSRF). No CVE of its own; the attack that moved GitHub Pages to github.io in 2013
// ("Yummy cookies across domains", github.blog), and the reason for the `__Host-` prefix
// (RFC 6265bis §4.1.3.2). Defences here: two session cookies are a 401 with the audit
// reason `ambiguous_session_cookie`; two login-state cookies end the callback; the session
// cookie is `__Host-kfp-session` by default, which a browser never accepts with a Domain.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { sessionSchema } from '../../src/config/session-schema.js';
import { browserLogin, launchBrowser, newContext, signInAtIssuer, startLoginByRequest } from '../helpers/browser.js';
import { startStack, untilReady } from '../helpers/stack.js';

t.test('two cookies of one name are refused, not resolved by order', async (t) => {
  const dir = t.testdir();
  const auditFile = join(dir, 'audit.log');
  const stack = await startStack(t, { login: { dir }, configure: (c) => ({ ...c, audit: { path: auditFile } }) });
  await untilReady(stack.proxy);
  const name = stack.config.authentication.session!.cookie.name;
  const browser = await launchBrowser(t);
  // The person's session, and the attacker's own (a real one: the attacker can sign in too).
  const person = await browserLogin(await newContext(browser, t), stack.proxy.url, name);
  const planted = await browserLogin(await newContext(browser, t), stack.proxy.url, name);
  const status = async (cookie: string) => {
    const res = await stack.fetch('/debug/headers', { headers: { cookie, accept: 'application/json' } });
    await res.body.dump();
    return res.statusCode;
  };

  t.equal(await status(`${name}=${person}`), 200, "the person's cookie alone works");
  t.equal(await status(`${name}=${planted}`), 200, "the attacker's cookie alone works");
  t.equal(await status(`${name}=${planted}; ${name}=${person}`), 401, 'a planted cookie sent first is refused');
  t.equal(await status(`${name}=${person}; other=1; ${name}=${planted}`), 401, 'a planted cookie sent second is refused');
  t.equal(await status(`${name}=${person}; ${name}=${person}`), 401, 'the same cookie twice is refused too');
  t.equal(await status(`${name}=${person}; ${name}_other=1`), 200, 'a cookie whose name only starts alike is not a second one');

  // The audit log is written asynchronously, flushed at least every second.
  let audit = '';
  for (let i = 0; i < 40 && !audit.includes('ambiguous_session_cookie'); i++) {
    await sleep(100);
    audit = await readFile(auditFile, 'utf8').catch(() => '');
  }
  const refusals = audit.split('\n').filter((line) => line.includes('GET /debug/headers') && / 401 /.test(line));
  t.equal(refusals.length, 3, 'three refusals in the audit log');
  t.ok(refusals.every((line) => line.endsWith('reason=ambiguous_session_cookie')), 'each says why');
});

t.test('two login-state cookies end the callback', async (t) => {
  const stack = await startStack(t, { login: { dir: t.testdir() } });
  await untilReady(stack.proxy);
  const { loginCookie, callbackPath } = await startLoginByRequest(stack);
  t.ok(loginCookie, '/start sets the login-state cookie');
  const callback = async (cookie: string) => {
    const res = await stack.fetch(callbackPath, { headers: { cookie } });
    return { status: res.statusCode, body: await res.body.text() };
  };
  const twice = await callback(`${loginCookie}; ${loginCookie}`);
  t.equal(twice.status, 400);
  t.match(twice.body, /expired or was already used/, 'refused before the provider is asked');
  const once = await callback(`${loginCookie}`);
  t.match(once.body, /could not be verified/, 'the control: the same cookie once reaches the code exchange');
});

t.test('the session cookie is __Host- by default', async (t) => {
  const stack = await startStack(t, { login: { dir: t.testdir() } });
  await untilReady(stack.proxy);
  const browser = await launchBrowser(t);
  const page = await (await newContext(browser, t)).newPage();
  await page.goto(`${stack.proxy.url}/oauth2/start`);
  const callback = page.waitForResponse((r) => r.url().includes('/oauth2/callback'));
  await signInAtIssuer(page);
  const setCookie = await (await callback).headerValues('set-cookie');
  const session = setCookie.flatMap((v) => v.split('\n')).find((line) => line.startsWith('__Host-kfp-session='));
  t.ok(session, `the session cookie is __Host-kfp-session (Set-Cookie: ${setCookie.map((l) => l.split('=')[0]).join(', ')})`);
  t.match(session, /; Path=\/(;|$)/, 'Path=/');
  t.match(session, /; Secure(;|$)/, 'Secure');
  t.notMatch(session, /Domain=/i, 'no Domain');
  t.ok((await page.context().cookies()).some((c) => c.name === '__Host-kfp-session'), 'and Chromium kept it');
});

t.test('cookie names in the configuration', async (t) => {
  const session = (cookie: Record<string, unknown>) => ({
    oidc: { issuerURL: 'https://idp.example.com', clientID: 'proxy', redirectURL: 'https://proxy.example.com/oauth2/callback' },
    cookie,
  });
  const nameOf = (cookie: Record<string, unknown>) => sessionSchema.parse(session(cookie)).cookie.name;
  t.equal(nameOf({}), '__Host-kfp-session', 'default without a domain');
  t.equal(nameOf({ domain: '.example.com' }), '_kfp_session', 'default with a domain: a __Host- cookie cannot have one');
  t.equal(nameOf({ name: '__Secure-sso', domain: '.example.com' }), '__Secure-sso', 'a __Secure- name needs nothing more');
  t.equal(nameOf({ name: 'mine' }), 'mine');
  for (const name of ['__Host-sso', '__host-sso']) {
    const result = sessionSchema.safeParse(session({ name, domain: '.example.com' }));
    t.notOk(result.success, `${name} with a domain is refused`);
    t.same(result.error?.issues.map((i) => i.path), [['cookie', 'name']], 'at the key cookie.name');
    t.match(result.error?.issues[0]?.message, /__Host- cookie cannot have a domain.*remove cookie\.domain, or choose a name without the __Host- prefix/, 'naming the fix');
  }
});
