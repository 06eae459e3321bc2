// The SSO gateway end to end, with real parts: a real Chromium, a real nginx
// (auth_request against forward-auth), the dev OpenID provider and the proxy
// fronting several small HTTPS apps on several host names (Chromium resolves
// *.gw.test and *.other.test to 127.0.0.1).
//
// - one login covers every route host under cookie.domain (.gw.test);
// - a route's allow rule: a person in oidc:finance reaches finance and gets a 403 page at hr;
// - a public route needs no login;
// - nginx in front of an app: a signed-in person passes with their headers, an anonymous
//   browser is sent to the login and back, someone the route refuses gets nginx's 403;
// - a route on a foreign host (apps.other.test) signs in on its own, with its own
//   callback, and its cookie is for that host alone;
// - a route whose upstream is down answers a Status while the others keep working.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { Agent, request } from 'undici';
import type { Page } from 'playwright-core';
import { launchBrowser, newContext, signInAtIssuer } from '../helpers/browser.js';
import { appUpstream, forwardAuthServerBlock, gatewayUser, startGateway, startNginx, startRecordingApp } from '../helpers/gateway.js';
import { openRaw, requestHead } from '../helpers/raw-tls.js';
import { devPki, freePort } from '../helpers/stack.js';

const pki = await devPki();
const pem = (file: string) => readFile(file, 'utf8');
const [proxyPort, nginxPort, closedPort] = await Promise.all([freePort(), freePort(), freePort()]);

/** A small HTTPS app that answers with its name and the headers it was sent, as a page. */
const startApp = async (name: string) =>
  (
    await startRecordingApp(t, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<pre id="seen">${JSON.stringify({ app: name, path: req.url, headers: req.headers }).replace(/</g, '\\u003c')}</pre>`);
    })
  ).url;
const [finance, hr, wiki, other] = await Promise.all(['finance', 'hr', 'wiki', 'other'].map(startApp));

const app = (url: string) => appUpstream(pki, url);
const { issuer, at } = await startGateway(t, {
  port: proxyPort,
  loginHost: 'sso.gw.test',
  cookieDomain: '.gw.test',
  foreignHosts: ['apps.other.test'],
  users: [gatewayUser('fiona', ['finance']), gatewayUser('harry', ['hr'])],
  routes: [
    { name: 'finance', host: 'finance.gw.test', upstream: app(finance), allow: { groups: ['oidc:finance'] } },
    { name: 'finance-public', host: 'finance.gw.test', pathPrefix: '/public', upstream: app(finance), public: true },
    { name: 'hr', host: 'hr.gw.test', upstream: app(hr), allow: { groups: ['oidc:hr'] } },
    // The app nginx fronts: forward-auth judges its URLs by this route's rule.
    { name: 'wiki', host: 'wiki.gw.test', upstream: app(wiki), allow: { groups: ['oidc:finance'] } },
    { name: 'other', host: 'apps.other.test', upstream: app(other) },
    { name: 'down', host: 'down.gw.test', upstream: app(`https://127.0.0.1:${closedPort}`) },
  ],
});
const SSO = at('sso.gw.test');
const OTHER = at('apps.other.test');

// nginx (Debian's nginx-light has auth_request) in front of the wiki app, asking the proxy, as the README shows.
await startNginx(t, nginxPort, forwardAuthServerBlock({ pki, port: nginxPort, host: 'wiki.gw.test', proxyPort, loginOrigin: SSO, route: 'wiki', appURL: wiki }));
const WIKI = at('wiki.gw.test', nginxPort);

const browser = await launchBrowser(t, ['*.gw.test', '*.other.test']);

/** What the app page shows it was sent, or undefined when the page is not an app's. */
async function seen(page: Page): Promise<{ app: string; path: string; headers: Record<string, string> } | undefined> {
  const pre = await page.$('#seen');
  return pre ? JSON.parse((await pre.textContent()) ?? '') : undefined;
}

/** Goes to `url`; signs in at the provider as `user` if it asks. Ends where the browser ends. */
async function visit(page: Page, url: string, user?: string) {
  const response = await page.goto(url);
  if (user && page.url().startsWith(issuer.url)) {
    await signInAtIssuer(page, user, user);
    await page.waitForURL((u) => !u.href.startsWith(issuer.url));
  }
  return response;
}

t.test('one login for every host under the cookie domain; finance lets oidc:finance in, hr shows a 403 page', async (t) => {
  const context = await newContext(browser, t);
  const page = await context.newPage();
  await visit(page, `${at('finance.gw.test')}/ledger?q=1`, 'fiona');
  t.equal(page.url(), `${at('finance.gw.test')}/ledger?q=1`, 'back where the person started, after a login on the login host');
  const finance = await seen(page);
  t.equal(finance?.app, 'finance');
  t.equal(finance?.headers['x-forwarded-user'], 'fiona@example.com');
  t.equal(finance?.headers['x-forwarded-groups'], 'oidc:finance');
  const cookies = await context.cookies();
  t.same(
    cookies.filter((c) => c.name === '_kfp_session').map((c) => c.domain),
    ['.gw.test'],
    'one session cookie, for the whole domain',
  );

  const refused = await visit(page, `${at('hr.gw.test')}/`);
  t.equal(refused?.status(), 403);
  t.equal(await seen(page), undefined, 'the hr app never saw the request');
  t.match(await page.textContent('body'), /signed in as fiona@example\.com/, 'the page says who they are');
  t.ok(await page.$('form[action="/oauth2/sign_out"]'), 'and offers to switch account');
});

t.test('a public route needs no login', async (t) => {
  const context = await newContext(browser, t);
  const page = await context.newPage();
  const response = await visit(page, `${at('finance.gw.test')}/public/logo.svg`);
  t.equal(response?.status(), 200);
  const publicPage = await seen(page);
  t.equal(publicPage?.path, '/public/logo.svg');
  t.equal(publicPage?.headers['x-forwarded-user'], undefined, 'no identity');
  t.same(await context.cookies(), [], 'and no cookie');
});

t.test('nginx auth_request: an anonymous browser goes to the login and back, then passes with its headers; a refused person gets 403', async (t) => {
  const context = await newContext(browser, t);
  const page = await context.newPage();
  await visit(page, `${WIKI}/page`, 'fiona');
  t.equal(page.url(), `${WIKI}/page`, 'back at nginx after the login (rd to a route host under the cookie domain)');
  const wikiPage = await seen(page);
  t.equal(wikiPage?.app, 'wiki');
  t.equal(wikiPage?.headers['x-user'], 'fiona@example.com', 'nginx passed the user forward-auth named');
  t.equal(wikiPage?.headers['x-email'], 'fiona@example.com');
  t.equal(wikiPage?.headers['x-groups'], 'oidc:finance');

  const harry = await newContext(browser, t);
  const harryPage = await harry.newPage();
  await visit(harryPage, `${WIKI}/page`, 'harry');
  // Signed in now: the page nginx answers after the login.
  const response = await harryPage.goto(`${WIKI}/page`);
  t.equal(response?.status(), 403, "the wiki route's rule refuses oidc:hr");
  t.equal(await seen(harryPage), undefined);
});

t.test('a foreign host signs in on its own, and its cookie is for that host alone', async (t) => {
  const context = await newContext(browser, t);
  const page = await context.newPage();
  await visit(page, `${at('finance.gw.test')}/`, 'fiona');
  t.equal((await seen(page))?.app, 'finance');

  await visit(page, `${OTHER}/inbox`, 'fiona');
  t.equal(page.url(), `${OTHER}/inbox`);
  const otherPage = await seen(page);
  t.equal(otherPage?.app, 'other');
  t.equal(otherPage?.headers['x-forwarded-user'], 'fiona@example.com');
  const sessions = (await context.cookies()).filter((c) => c.name === '_kfp_session');
  t.same(sessions.map((c) => c.domain).sort(), ['.gw.test', 'apps.other.test'], 'a host-only cookie on the foreign host; the domain cookie untouched');
});

t.test("a route whose upstream is down answers a Status; the other routes keep working", async (t) => {
  // The serving certificate names localhost only: verified against its CA, the name not checked.
  const agent = new Agent({ connect: { ca: await pem(pki.servingCA), checkServerIdentity: () => undefined } });
  t.teardown(() => agent.close());
  const context = await newContext(browser, t);
  const page = await context.newPage();
  await visit(page, `${at('finance.gw.test')}/`, 'fiona');
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const get = async (host: string) => {
    const res = await request(`https://127.0.0.1:${proxyPort}/`, { dispatcher: agent, headers: { host, cookie, accept: 'application/json' } });
    return { status: res.statusCode, body: await res.body.text() };
  };
  const down = await get('down.gw.test');
  t.ok(down.status === 502 || down.status === 503, `down: ${down.status}`);
  t.match(JSON.parse(down.body), { kind: 'Status', code: down.status });
  t.equal((await get('finance.gw.test')).status, 200, 'finance still answers');
  t.equal((await get('nowhere.gw.test')).status, 404, 'a host no route names is a 404');
});

t.test('Envoy ext_authz shape: <auth path><original path> with the original Host, 200 to allow (no Envoy on this machine: the requests are made as its HTTP check sends them)', async (t) => {
  const cookieOf = async (user: string) => {
    const context = await newContext(browser, t);
    const page = await context.newPage();
    await visit(page, `${at('finance.gw.test')}/`, user);
    return (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  };
  // Raw bytes: a client library would resolve the dot segments before sending.
  const check = async (path: string, headers: Record<string, string>) => {
    const raw = await openRaw(`https://127.0.0.1:${proxyPort}`, await pem(pki.servingCA), t);
    raw.write(requestHead('GET', `/oauth2/auth${path}`, `wiki.gw.test:${nginxPort}`, [...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'Connection: close']));
    const text = await raw.until((r) => r.includes('\r\n\r\n'));
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), user: /\r\nx-auth-request-user: ([^\r]*)/i.exec(text)?.[1] };
  };
  const fiona = await cookieOf('fiona');
  t.same(await check('/page?x=1', { cookie: fiona }), { status: 200, user: 'fiona@example.com' });
  t.same(await check('/page', { cookie: await cookieOf('harry') }), { status: 403, user: undefined }, "the wiki route's rule");
  t.same(await check('/page', {}), { status: 401, user: undefined });
  t.same(await check('/page', { cookie: fiona, 'x-original-url': `https://wiki.gw.test/elsewhere` }), { status: 400, user: undefined }, 'a header that disagrees');
  t.same(await check('/a/../page', { cookie: fiona }), { status: 400, user: undefined }, 'dot segments');
});
