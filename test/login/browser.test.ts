// Browser single sign-on with a real Chromium against a real OIDC provider: log in,
// land on the page first asked for, through the proxy, as the upstream sees it;
// the kubeconfig page's kubeconfig works with real kubectl; sign out ends it all.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { LOGIN_STATE_COOKIE } from '../../src/login/login-state.js';
import { launchBrowser, newContext, SESSION_COOKIE, signInAtIssuer } from '../helpers/browser.js';
import { startStack, untilReady } from '../helpers/stack.js';

const run = promisify(execFile);
type Headers = { headers: [string, string][] };
const header = (seen: Headers, name: string) => seen.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);

t.test('browser login, session, kubeconfig, sign out', async (t) => {
  const stack = await startStack(t, { login: { dir: t.testdir() } });
  await untilReady(stack.proxy);
  const browser = await launchBrowser(t);
  const context = await newContext(browser, t);
  const page = await context.newPage();
  const proxy = stack.proxy.url;

  const callbacks: string[] = [];
  page.on('request', (r) => {
    if (r.url().includes('/oauth2/callback')) callbacks.push(r.url());
  });

  await page.goto(`${proxy}/debug/headers?first=visit`);
  t.match(page.url(), new URL(stack.issuer.url).host, 'sent to the identity provider');
  const before = await context.cookies();
  t.ok(before.find((c) => c.name === LOGIN_STATE_COOKIE), 'a login-state cookie holds the pending login');
  t.notOk(before.find((c) => c.name === SESSION_COOKIE), 'and no session exists before the login succeeds');

  await signInAtIssuer(page);
  await page.waitForURL(`${proxy}/debug/headers?first=visit`);
  t.pass('landed on the page first asked for');
  const seen = JSON.parse(await page.innerText('body')) as Headers;
  t.same(header(seen, 'x-remote-user'), ['demo@example.com'], 'the upstream received the user');
  t.same(header(seen, 'x-remote-group'), ['oidc:developers', 'oidc:infrastructure']);
  t.notOk(header(seen, 'cookie').some((c) => c.includes(SESSION_COOKIE)), 'the session cookie is not forwarded');

  const after = await context.cookies();
  const cookie = after.find((c) => c.name === SESSION_COOKIE)!;
  t.ok(cookie, 'a session cookie after login');
  t.notOk(after.find((c) => c.name === LOGIN_STATE_COOKIE), 'the callback cleared the login-state cookie');
  t.match(cookie, { httpOnly: true, secure: true, sameSite: 'Lax', path: '/' }, 'cookie attributes');

  t.test('userinfo', async (t) => {
    const res = await context.request.get(`${proxy}/oauth2/userinfo`);
    t.equal(res.status(), 200);
    t.match(await res.json(), { user: 'demo@example.com', uid: 'demo', groups: ['oidc:developers', 'oidc:infrastructure'] });
  });

  t.test('a replayed callback is refused', async (t) => {
    t.equal(callbacks.length, 1);
    const res = await context.request.get(callbacks[0], { maxRedirects: 0 });
    t.equal(res.status(), 400);
  });

  t.test('a cross-origin POST with the cookie is refused; a same-origin one passes', async (t) => {
    const cross = await context.request.post(`${proxy}/debug/echo`, { headers: { origin: 'https://evil.example' }, data: 'x' });
    t.equal(cross.status(), 403);
    t.match(await cross.json(), { reason: 'Forbidden' });
    const same = await context.request.post(`${proxy}/debug/echo`, { headers: { origin: new URL(proxy).origin }, data: 'hello' });
    t.equal(same.status(), 200);
    t.equal(await same.text(), 'hello');
  });

  t.test('the kubeconfig page shows the identity and a kubeconfig kubectl can use', async (t) => {
    const kpage = await context.newPage();
    const response = await kpage.goto(`${proxy}/oauth2/kubeconfig`);
    t.match(response!.headers()['content-security-policy'], /default-src 'none'/);
    t.match(response!.headers()['cache-control'], /no-store/);
    t.equal(await kpage.innerText('#username'), 'demo@example.com');
    const download = await context.request.get(`${proxy}/oauth2/kubeconfig?download=token`);
    t.match(download.headers()['content-disposition'], /attachment/);
    const file = join(t.testdir(), 'kubeconfig');
    await writeFile(file, await download.text());
    const { stdout } = await run('kubectl', ['--kubeconfig', file, 'auth', 'whoami', '-o', 'json']);
    t.match(JSON.parse(stdout).status.userInfo, { username: 'demo@example.com', groups: ['oidc:developers', 'oidc:infrastructure'] });
    t.match(await kpage.innerText('#kubelogin'), /oidc-login/);
    await kpage.close();
  });

  t.test('sign out ends the session; a later visit must log in again', async (t) => {
    // GET shows a button; the button POSTs.
    await page.goto(`${proxy}/oauth2/sign_out`);
    await Promise.all([page.waitForURL((u) => u.host === new URL(stack.issuer.url).host), page.click('button[type=submit]')]);
    // RP-initiated logout: the provider may ask to confirm.
    const confirm = page.locator('button[type=submit], input[type=submit]');
    if (await confirm.count()) await confirm.first().click();
    await page.waitForLoadState('networkidle');
    const api = await context.request.get(`${proxy}/debug/headers`, { headers: { accept: 'application/json' }, maxRedirects: 0 });
    t.equal(api.status(), 401, 'the old cookie no longer authenticates');
    await page.goto(`${proxy}/debug/headers`);
    t.match(page.url(), new URL(stack.issuer.url).host, 'a later visit goes to the provider');
    t.ok(await page.locator('input[name=password]').count(), 'and must sign in again there');
  });
});
