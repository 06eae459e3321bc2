// Attack class: forward-auth answering for a request other than the one the ingress
// holds. nginx (auth_request), ingress-nginx, Traefik and Envoy ask the proxy about
// a request and let it through on a 2xx; the proxy's verdict is only as good as its
// reading of that request. Three ways to make it judge another one:
//
// 1. Headers the client adds beside the ingress's own (an ingress overwrites only the
//    headers it sets): X-Forwarded-Host/-Uri or X-Original-URI/-URL naming a public
//    route. The proxy refuses sources that disagree (held here through real nginx).
// 2. The Host the ingress copies into X-Original-URL: the README's first snippet (and
//    ingress-nginx's auth location) wrote `$scheme://$http_host$request_uri`, and
//    `$http_host` is the client's Host. A server block that is nginx's default for its
//    address (the only one there, or default_server, or an Ingress without a host)
//    takes any Host, so a client naming a public route's host gets 202 for any path
//    of the protected app. Fixed: the snippet names the server's own origin, and
//    `route=` on the auth URL pins the route an ingress fronts.
// 3. The method: nginx's auth subrequest is always a GET, and the proxy's cross-site
//    guard for the session cookie lets GETs pass. A page on a sibling subdomain
//    (same site: SameSite=Lax sends the cookie) POSTs a form to the nginx-fronted
//    app; the proxy answers 202 where, as a route of its own, it refuses the same
//    POST as a cross-site request. Traefik and ingress-nginx do say the method
//    (X-Forwarded-Method, X-Original-Method) and the Origin travels with the check.
//    Fixed: forward-auth holds a session to the same cross-site rule, with the
//    original URL's origin as ours (route/forward-auth.ts isCrossSite).
//
// Real parts: Chromium, nginx (Debian's nginx-light), the dev OpenID provider, the
// proxy, and HTTPS apps that record what they are sent. Chromium resolves *.gw.test
// to 127.0.0.1.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import t from 'tap';
import { Agent, request } from 'undici';
import { launchBrowser, newContext, signInAtIssuer } from '../helpers/browser.js';
import { appUpstream, forwardAuthServerBlock, gatewayUser, startGateway, startNginx, startRecordingApp } from '../helpers/gateway.js';
import { rawRequest } from '../kube/helpers/raw-http.js';
import { devPki, freePort } from '../helpers/stack.js';

const pki = await devPki();
const pem = (file: string) => readFile(file, 'utf8');
const [proxyPort, nginxPort] = await Promise.all([freePort(), freePort()]);

/** An HTTPS server on loopback; `handle` answers. */
async function serve(handle: Parameters<typeof createServer>[1]): Promise<number> {
  const server = createServer({ cert: await pem(pki.upstreamCert), key: await pem(pki.upstreamKey) }, handle);
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.teardown(() => server.close());
  return (server.address() as { port: number }).port;
}

const [finance, wiki, status] = await Promise.all([startRecordingApp(t), startRecordingApp(t), startRecordingApp(t)]);
const app = (url: string) => appUpstream(pki, url);
const { issuer, at } = await startGateway(t, {
  port: proxyPort,
  loginHost: 'sso.gw.test',
  cookieDomain: '.gw.test',
  users: [gatewayUser('fiona', ['finance'])],
  routes: [
    { name: 'finance', host: 'finance.gw.test', upstream: app(finance.url), allow: { groups: ['oidc:finance'] } },
    // The app nginx fronts: forward-auth judges its URLs by this route's rule.
    { name: 'wiki', host: 'wiki.gw.test', upstream: app(wiki.url), allow: { groups: ['oidc:finance'] } },
    // A status page anyone may read, as config/sso-gateway.yaml has public assets.
    { name: 'status', host: 'status.gw.test', upstream: app(status.url), public: true },
  ],
});
const SSO = at('sso.gw.test');

// nginx in front of the wiki, configured as the README's snippet says.
await startNginx(t, nginxPort, forwardAuthServerBlock({ pki, port: nginxPort, host: 'wiki.gw.test', proxyPort, loginOrigin: SSO, route: 'wiki', appURL: wiki.url }));
const WIKI = at('wiki.gw.test', nginxPort);

// The attacker's page, on a sibling subdomain: same site as the wiki.
const evilPort = await serve((req, res) => {
  const target = new URL(req.url ?? '/', 'https://x').searchParams.get('to') ?? '';
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(`<form method="POST" action="${target.replace(/"/g, '')}"><input name="amount" value="1000000"></form><script>document.forms[0].submit()</script>`);
});
const EVIL = at('evil.gw.test', evilPort);

const browser = await launchBrowser(t, ['*.gw.test']);
const context = await newContext(browser, t);
{
  // fiona signs in through the wiki, as in the README's flow.
  const page = await context.newPage();
  await page.goto(`${WIKI}/page`);
  if (page.url().startsWith(issuer.url)) {
    await signInAtIssuer(page, 'fiona', 'fiona');
    await page.waitForURL((u) => u.href.startsWith(WIKI));
  }
  await page.close();
}
const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
const session = (headers: string[] = []) => [`Cookie: ${cookie}`, ...headers];

t.test('the test can tell: fiona signed in reaches the wiki through nginx with her name', async (t) => {
  t.ok(wiki.seen.some((s) => s.path === '/page' && s.headers['x-user'] === 'fiona@example.com'));
  t.equal(await hostRequest(nginxPort, 'wiki.gw.test', '/page'), 302, 'nobody is sent to sign in');
});

t.test('1. headers a client adds beside nginx own X-Original-URL are refused, not read', async (t) => {
  const before = wiki.seen.length;
  for (const [name, value] of [
    ['x-forwarded-host', 'status.gw.test'],
    ['x-original-uri', '/'],
    ['x-forwarded-uri', '/x'],
    ['x-original-url', 'https://status.gw.test/'],
  ]) {
    const res = await hostRequest(nginxPort, 'wiki.gw.test', '/secret', { [name]: value });
    t.not(res, 200, `${name}: ${value}: nginx answered ${res}`);
  }
  t.equal(wiki.seen.length, before, 'the wiki was sent none of them');
});

t.test("2. a client's Host naming a public route's host, sent to nginx's server for the wiki", async (t) => {
  wiki.seen.length = 0;
  const res = await hostRequest(nginxPort, 'status.gw.test', '/secret');
  t.not(res, 200, `nginx answered ${res} to an anonymous request`);
  t.same(
    wiki.seen.filter((s) => s.path === '/secret').map((s) => s.headers['x-user'] ?? '(nobody)'),
    [],
    'the wiki never served /secret to nobody',
  );
  // Found by this test with the README's first snippet (X-Original-URL from $http_host): an
  // ingress that still copies the client's Host is held by route=, which pins the route.
  const pinned = await rawRequest(`https://127.0.0.1:${proxyPort}`, await pem(pki.servingCA), 'GET', '/oauth2/auth?route=wiki', ['X-Original-URL: https://status.gw.test/secret']);
  t.equal(pinned.status, 403, "route=wiki: an original URL of the public status route is not the wiki's to allow");
  const unpinned = await rawRequest(`https://127.0.0.1:${proxyPort}`, await pem(pki.servingCA), 'GET', '/oauth2/auth', ['X-Original-URL: https://status.gw.test/secret']);
  t.equal(unpinned.status, 202, 'without route=, the status route is public (what made $http_host dangerous)');
});

t.test('3. a cross-site POST with the session cookie: refused by the proxy as a route, and through forward-auth', async (t) => {
  const page = await context.newPage();
  finance.seen.length = 0;
  wiki.seen.length = 0;
  await page.goto(`${EVIL}/?to=${encodeURIComponent(`${at('finance.gw.test')}/transfer`)}`);
  await page.waitForLoadState('load');
  await page.waitForTimeout(300);
  t.same(finance.seen.filter((s) => s.method === 'POST'), [], 'the proxy refuses it on its own route (the boundary forward-auth should keep)');

  await page.goto(`${EVIL}/?to=${encodeURIComponent(`${WIKI}/transfer`)}`);
  await page.waitForLoadState('load');
  await page.waitForTimeout(300);
  for (const s of wiki.seen) t.comment(`the wiki was sent ${s.method} ${s.path} as ${String(s.headers['x-user'])}, Origin ${String(s.headers.origin)}`);
  t.same(
    wiki.seen.filter((s) => s.method === 'POST').map((s) => `${s.method} ${s.path} as ${String(s.headers['x-user'])}`),
    [],
    'the wiki behind nginx was not sent the forged POST',
  );

  // Traefik says the method; the Origin travels with the check.
  const traefik = await rawRequest(`https://127.0.0.1:${proxyPort}`, await pem(pki.servingCA), 'GET', '/oauth2/auth', session([
    'X-Forwarded-Method: POST',
    'X-Forwarded-Proto: https',
    'X-Forwarded-Host: wiki.gw.test',
    'X-Forwarded-Uri: /transfer',
    `Origin: ${EVIL}`,
  ]));
  t.equal(traefik.status, 403, `a cross-site POST as Traefik describes it: ${traefik.status}`);
  const sameOrigin = await rawRequest(`https://127.0.0.1:${proxyPort}`, await pem(pki.servingCA), 'GET', '/oauth2/auth', session([
    'X-Forwarded-Method: POST',
    'X-Forwarded-Host: wiki.gw.test',
    'X-Forwarded-Uri: /transfer',
    'Origin: https://wiki.gw.test',
  ]));
  t.equal(sameOrigin.status, 202, 'a same-origin POST passes (the test can tell)');
});

/** GET `path` with exactly this Host over TLS to loopback `port`; the status. */
async function hostRequest(port: number, host: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  const agent = new Agent({ connect: { ca: await pem(pki.servingCA), checkServerIdentity: () => undefined } });
  t.teardown(() => agent.close());
  const res = await request(`https://127.0.0.1:${port}${path}`, { dispatcher: agent, headers: { ...headers, host }, maxRedirections: 0 } as Parameters<typeof request>[1]);
  await res.body.dump();
  return res.statusCode;
}
