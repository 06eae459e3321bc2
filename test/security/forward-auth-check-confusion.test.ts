// Attack class: forward-auth judging a request other than the one the ingress holds,
// second pass (issue 14, after the fixes of forward-auth-original-url-spoofing). The
// fixes added three readers, each attacked here:
//
// 1. isCrossSite: a session cookie is held to the cross-site rule with the original
//    URL's origin as ours. Tried: Origin spellings (case, default port, another port,
//    trailing dot, http for https, `null`, two Origin lines), Referer-only requests,
//    X-Forwarded-Proto games, the method from two sources that disagree, a WebSocket
//    upgrade as nginx's auth subrequest carries it.
// 2. The route pin `?route=<name>`: case, empty, repeated, percent-encoded.
// 3. Envoy's `ext_authz` form `<auth path><original path>`, answered 200: dot segments
//    and encoded slashes after the prefix, query smuggling into `allowed_groups` and
//    `route`, and the form combined with X-Original-URL / X-Forwarded-Host, which
//    Envoy passes on from the client when its allowed_headers lets them through (a
//    common `prefix: x-` pattern, needed anyway for the cookie and X-Forwarded-Proto).
//
// Real parts: the dev OpenID provider, a session made by real Chromium through the
// proxy's login, the proxy; the checks go out as raw bytes with the Host and header
// lines an ingress (or a client through it) would send.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import { connect } from 'node:tls';
import t from 'tap';
import { browserLogin, launchBrowser, newContext } from '../helpers/browser.js';
import { devPki, startStack, untilReady } from '../helpers/stack.js';

const pki = await devPki();
const app = createServer({ cert: await readFile(pki.upstreamCert), key: await readFile(pki.upstreamKey) }, (_req, res) => res.end('app'));
app.listen(0, '127.0.0.1');
await once(app, 'listening');
t.teardown(() => app.close());
const upstream = { url: `https://127.0.0.1:${(app.address() as { port: number }).port}`, caFile: pki.upstreamCA, identity: 'application' as const };

// The login host is under the cookie domain, so the session is the domain's and a browser
// would send its cookie to the wiki and finance alike (what forward-auth is asked about).
const stack = await startStack(t, {
  login: { dir: t.testdir(), host: 'sso.gw.test' },
  configure: (base) => {
    const { upstream: _dev, ...rest } = base;
    const session = rest.authentication!.session!;
    return {
      ...rest,
      authentication: { ...rest.authentication, session: { ...session, cookie: { ...session.cookie, domain: '.gw.test' } } },
      routes: [
        // demo is in oidc:developers: the wiki lets them in, finance does not.
        { name: 'wiki', host: 'wiki.gw.test', upstream, allow: { groups: ['oidc:developers'] } },
        { name: 'finance', host: 'finance.gw.test', upstream, allow: { groups: ['oidc:finance'] } },
        { name: 'status', host: 'status.gw.test', upstream, public: true },
        // The login host.
        { name: 'home', host: 'sso.gw.test', upstream },
      ],
    };
  },
});
await untilReady(stack.proxy);
const { hostname, port } = new URL(stack.proxy.url);

const browser = await launchBrowser(t, ['*.gw.test']);
const context = await newContext(browser, t);
const sessionCookie = `Cookie: _kfp_session=${await browserLogin(context, `https://sso.gw.test:${port}`, '_kfp_session')}`;

/** Raw HTTP/1.1 bytes with exactly this Host and these lines; the status (0: closed without one). */
async function check(target: string, host: string, lines: readonly string[], method = 'GET'): Promise<number> {
  const socket = connect({ host: hostname, port: Number(port), ca: stack.servingCA, ALPNProtocols: ['http/1.1'] });
  t.teardown(() => socket.destroy());
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  socket.write(`${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n${[...lines, 'Connection: close'].map((l) => `${l}\r\n`).join('')}\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await Promise.race([once(socket, 'close'), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'))?.[1] ?? 0);
}

/** Traefik's description of a request to the wiki (X-Forwarded-*), with the session cookie. */
const traefik = (method: string, more: string[]) => ['X-Forwarded-Proto: https', 'X-Forwarded-Host: wiki.gw.test', 'X-Forwarded-Uri: /transfer', `X-Forwarded-Method: ${method}`, sessionCookie, ...more];
/** nginx's (the README snippet): X-Original-URL and X-Original-Method, with the session cookie. */
const nginx = (method: string, more: string[]) => ['X-Original-URL: https://wiki.gw.test/transfer', `X-Original-Method: ${method}`, sessionCookie, ...more];

t.test('the test can tell: a same-origin POST and a plain GET pass, for Traefik, nginx and Envoy', async (t) => {
  t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('POST', ['Origin: https://wiki.gw.test'])), 202, 'Traefik, same origin');
  t.equal(await check('/oauth2/auth?route=wiki', 'sso.gw.test', nginx('POST', ['Origin: https://wiki.gw.test'])), 202, 'nginx, same origin');
  t.equal(await check('/oauth2/auth/transfer', 'wiki.gw.test', [sessionCookie, 'Origin: https://wiki.gw.test'], 'POST'), 200, 'Envoy, same origin');
  t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('GET', [])), 202, 'a navigation (GET, no Origin)');
  t.equal(await check('/oauth2/auth', 'sso.gw.test', ['X-Original-URL: https://finance.gw.test/x', sessionCookie]), 403, "finance's rule refuses demo");
});

t.test('1. isCrossSite: Origin spellings that are not the original URL\'s origin are refused', async (t) => {
  const foreign = [
    'https://evil.gw.test',
    'HTTPS://EVIL.GW.TEST',
    'http://wiki.gw.test', // a plain-http page on the same name (a network attacker's)
    'https://wiki.gw.test:8443', // another port of the same host
    'https://wiki.gw.test.evil.test',
    'https://wiki.gw.test@evil.gw.test',
    'null', // a sandboxed iframe's form
    'https://wiki.gw.test, https://evil.gw.test',
    '',
    'wiki.gw.test',
  ];
  for (const origin of foreign) {
    for (const [name, lines] of [['Traefik', traefik('POST', [`Origin: ${origin}`])], ['nginx', nginx('POST', [`Origin: ${origin}`])]] as const) {
      const target = name === 'nginx' ? '/oauth2/auth?route=wiki' : '/oauth2/auth';
      t.equal(await check(target, 'sso.gw.test', lines), 403, `${name}: Origin ${JSON.stringify(origin)}`);
    }
    t.equal(await check('/oauth2/auth/transfer', 'wiki.gw.test', [sessionCookie, `Origin: ${origin}`], 'POST'), 403, `Envoy: Origin ${JSON.stringify(origin)}`);
  }
  // Two Origin lines: Node joins them; neither may pick the verdict alone.
  t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('POST', ['Origin: https://wiki.gw.test', 'Origin: https://evil.gw.test'])), 403, 'two Origin lines, ours first');
  // A cross-site GET that is not a navigation (fetch with credentials) carries Origin too: refused whatever the method.
  t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('GET', ['Origin: https://evil.gw.test'])), 403, 'a cross-origin GET with Origin');
});

t.test('1. isCrossSite: the same origin spelt as browsers may is ours (no false refusals to hide behind)', async (t) => {
  for (const origin of ['https://wiki.gw.test:443', 'https://WIKI.gw.test']) {
    t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('POST', [`Origin: ${origin}`])), 202, `Origin ${origin}`);
  }
});

t.test('1. isCrossSite: X-Forwarded-Proto games', async (t) => {
  // The ingress says https; a page served over plain http on the same name is another origin.
  t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('POST', ['Origin: http://wiki.gw.test'])), 403, 'https request, http Origin');
  // Spellings of the proto that are not exactly "http" count as https: an http Origin stays foreign.
  for (const proto of ['HTTP', 'http, https', 'https, http']) {
    const lines = ['X-Forwarded-Proto: ' + proto, 'X-Forwarded-Host: wiki.gw.test', 'X-Forwarded-Uri: /transfer', 'X-Forwarded-Method: POST', sessionCookie, 'Origin: http://evil.gw.test'];
    t.equal(await check('/oauth2/auth', 'sso.gw.test', lines), 403, `X-Forwarded-Proto: ${proto}, Origin http://evil.gw.test`);
  }
});

t.test('1. isCrossSite: Referer-only requests (no Origin) with an unsafe method', async (t) => {
  t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('POST', [])), 403, 'neither Origin nor Referer');
  t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('POST', ['Referer: https://evil.gw.test/page'])), 403, 'a foreign Referer');
  t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('post', ['Referer: https://evil.gw.test/page'])), 403, 'the method in lower case');
  t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('PROPFIND', ['Referer: https://evil.gw.test/'])), 403, 'a method nobody lists');
  t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('POST', ['Referer: https://wiki.gw.test.evil.test/'])), 403, 'a Referer whose host begins with ours');
  t.equal(await check('/oauth2/auth', 'sso.gw.test', traefik('POST', ['Referer: https://wiki.gw.test/page'])), 202, 'our own Referer passes (the test can tell)');
});

t.test('1. isCrossSite: the method from two sources that disagree', async (t) => {
  // nginx's auth subrequest carries every client header: a client may add X-Forwarded-Method beside
  // nginx's own X-Original-Method; Envoy's check carries the original method itself.
  const nginxWithClientMethod = ['X-Forwarded-Method: GET', ...nginx('POST', ['Referer: https://evil.gw.test/'])];
  t.equal(
    await check('/oauth2/auth?route=wiki', 'sso.gw.test', nginxWithClientMethod).then((code) => (t.comment(`→ ${code}`), code)),
    403,
    "nginx says POST (X-Original-Method), the client's X-Forwarded-Method says GET",
  );
  t.equal(
    await check('/oauth2/auth/transfer', 'wiki.gw.test', [sessionCookie, 'X-Forwarded-Method: GET', 'Referer: https://evil.gw.test/'], 'POST').then((code) => (t.comment(`→ ${code}`), code)),
    403,
    'Envoy checks a POST; a client-added X-Forwarded-Method says GET',
  );
});

t.test('1. isCrossSite: a cross-site WebSocket upgrade as nginx\'s auth subrequest carries it', async (t) => {
  // nginx's subrequest is a GET without Upgrade (hop-by-hop), but the browser's Origin travels with it.
  const lines = ['X-Original-URL: https://wiki.gw.test/socket', 'X-Original-Method: GET', sessionCookie, 'Origin: https://evil.gw.test', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='];
  t.equal(await check('/oauth2/auth?route=wiki', 'sso.gw.test', lines), 403, 'refused: Origin is not the wiki');
  t.equal(await check('/oauth2/auth/socket', 'wiki.gw.test', [sessionCookie, 'Origin: https://evil.gw.test', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']), 403, 'Envoy: the same upgrade');
});

t.test('2. the route pin: spellings that must not let another route through', async (t) => {
  // Anonymous checks of a public URL: allowed unless the pin holds.
  const statusURL = ['X-Original-URL: https://status.gw.test/secret'];
  t.equal(await check('/oauth2/auth', 'sso.gw.test', statusURL), 202, 'unpinned, the status route is public (the test can tell)');
  for (const query of ['route=wiki', 'route=WIKI', 'route=', 'route', 'route=wiki&route=status', 'route=%77iki', 'route=wiki%00', 'route=wiki&Route=status', 'route=wiki;route=status', 'route=wiki#route=status']) {
    const code = await check(`/oauth2/auth?${query}`, 'sso.gw.test', statusURL);
    t.ok(code === 403 || code === 400, `?${query} with the status URL → ${code}`);
  }
  t.equal(await check('/oauth2/auth?route=%77iki', 'sso.gw.test', ['X-Original-URL: https://wiki.gw.test/x']), 401, 'an encoded pin still names the wiki: its URL needs a login');
});

t.test('3. Envoy form: paths after the prefix that could route elsewhere', async (t) => {
  for (const path of ['/oauth2/auth/..', '/oauth2/auth/../x', '/oauth2/auth/%2e%2e/x', '/oauth2/auth/.%2E/x', '/oauth2/auth//x', '/oauth2/auth/x%2f..%2fy', '/oauth2/auth/x%5cy', '/oauth2/auth/x;y', '/oauth2/auth/x\\..\\y']) {
    const code = await check(path, 'wiki.gw.test', []);
    t.equal(code, 400, `${path} → ${code}`);
  }
  // The check of a wiki URL with nobody signed in: 401, whatever the original query says.
  for (const query of ['', '?route=status', '?allowed_groups=', '?route=status&allowed_groups=x']) {
    t.equal(await check(`/oauth2/auth/secret${query}`, 'wiki.gw.test', []), 401, `anonymous /secret${query}`);
  }
  // allowed_groups in the original query is the original request's, never a narrowing nor a widening of ours.
  t.equal(await check('/oauth2/auth/x?allowed_groups=oidc:developers', 'finance.gw.test', [sessionCookie]), 403, "finance's rule holds whatever the query says");
});

t.test('3. Envoy form combined with X-Original-URL / X-Forwarded-Host naming a public route', async (t) => {
  // Envoy asks with the original Host (wiki) and path; a client header naming the public status route rides along.
  t.equal(await check('/oauth2/auth/secret', 'wiki.gw.test', []), 401, 'the plain Envoy check: the wiki needs a login');
  t.equal(
    await check('/oauth2/auth/secret', 'wiki.gw.test', ['X-Forwarded-Host: status.gw.test']).then((code) => (t.comment(`→ ${code}`), code)),
    400,
    "Envoy's Host is the wiki; a client's X-Forwarded-Host says status: sources that disagree are refused (400)",
  );
  t.equal(
    await check('/oauth2/auth/secret', 'wiki.gw.test', ['X-Original-URL: https://status.gw.test/secret']).then((code) => (t.comment(`→ ${code}`), code)),
    400,
    "Envoy's Host is the wiki; a client's X-Original-URL names status with the same path",
  );
  t.equal(await check('/oauth2/auth/secret', 'wiki.gw.test', ['X-Original-URL: https://status.gw.test/other']), 400, 'paths that disagree are refused');
  t.equal(await check('/oauth2/auth/secret', 'wiki.gw.test', ['X-Forwarded-Uri: /other']), 400);
});

t.test('3. Envoy form: an Envoy whose one virtual host (domains: ["*"]) fronts the wiki takes any Host', async (t) => {
  // The nginx default-server case of the first pass, for Envoy: the client names the public route's
  // host and Envoy asks about it. nginx pins with ?route=; Envoy can only add a header to its check
  // (authorization_request.headers_to_add), and no such pin is read.
  t.equal(
    await check('/oauth2/auth/secret', 'status.gw.test', ['X-Auth-Request-Route: wiki']).then((code) => (t.comment(`→ ${code}`), code)),
    403,
    'a check pinned to the wiki by a header Envoy adds, for a Host that names status',
  );
});
