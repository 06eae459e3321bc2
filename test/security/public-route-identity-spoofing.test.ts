// Attack class: identity headers the client chose, on a route that reads none.
// A public route forwards with no identity and reads no credential, so it is where a
// client's own X-Forwarded-User (or X-Auth-Request-User, an underscore spelling, a
// duplicate) would most easily reach an application as if the proxy had said it; and
// where a longer public prefix could take over a private route's paths. An
// application route with a signed-in caller is the other place: the client's lines
// must be gone and the proxy's alone arrive. Forward-auth for a public URL must not
// name anyone either (oauth2-proxy's X-Auth-Request-* are what nginx hands the app).
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:https';
import t from 'tap';
import { rawRequest } from '../kube/helpers/raw-http.js';
import { devPki, startStack, untilReady } from '../helpers/stack.js';

const pki = await devPki();
const seen: Array<{ path: string; rawHeaders: string[]; headers: IncomingHttpHeaders }> = [];
const app = createServer({ cert: await readFile(pki.upstreamCert), key: await readFile(pki.upstreamKey) }, (req, res) => {
  seen.push({ path: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers });
  res.end('app');
});
app.listen(0, '127.0.0.1');
await once(app, 'listening');
t.teardown(() => app.close());
const upstream = { url: `https://127.0.0.1:${(app.address() as { port: number }).port}`, caFile: pki.upstreamCA, identity: 'application' as const };

const stack = await startStack(t, {
  configure: (base) => {
    const { upstream: _dev, ...rest } = base;
    return {
      ...rest,
      routes: [
        { name: 'admin', pathPrefix: '/admin', upstream, allow: { users: ['boss@example.com'] } },
        { name: 'assets', pathPrefix: '/assets', upstream, public: true },
        { name: 'app', pathPrefix: '/', upstream },
      ],
    };
  },
});
await untilReady(stack.proxy);

/** Every spelling of the identity a client might try to hand an application. */
const SPOOFED = [
  'X-Forwarded-User: boss@example.com',
  'x-forwarded-user: boss@example.com',
  'X_Forwarded_User: boss@example.com',
  'X-Forwarded-Email: boss@example.com',
  'X-Forwarded-Groups: admins',
  'X-Forwarded-Preferred-Username: boss',
  'X-Forwarded-Access-Token: forged',
  'X-Auth-Request-User: boss@example.com',
  'X-Auth-Request-Email: boss@example.com',
  'X_Auth_Request_Groups: admins',
  'X-Remote-User: boss@example.com',
  'X-Remote-Group: system:masters',
];

/** The identity-bearing header lines the application was sent for the request to `path`. */
function identityLines(path: string): string[] {
  const request = seen.find((s) => s.path === path);
  if (!request) return ['(not sent)'];
  const lines: string[] = [];
  for (let i = 0; i < request.rawHeaders.length; i += 2) {
    const name = request.rawHeaders[i].toLowerCase().replace(/_/g, '-');
    if (/^x-(forwarded-(user|email|groups|preferred-username|access-token)|auth-request-|remote-)/.test(name)) lines.push(`${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}`);
  }
  return lines;
}

t.test('a public route: no identity reaches the application, whatever the client sent', async (t) => {
  const res = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/assets/a.css', SPOOFED);
  t.equal(res.status, 200);
  t.same(identityLines('/assets/a.css'), [], 'the app was told no one');
});

t.test('an application route: only the proxy names the caller', async (t) => {
  const token = await stack.mint({ email: 'intern@example.com', groups: ['interns'] });
  const res = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/page', [...SPOOFED, `Authorization: Bearer ${token}`]);
  t.equal(res.status, 200);
  t.same(identityLines('/page'), ['X-Forwarded-User: intern@example.com', 'X-Forwarded-Email: intern@example.com', 'X-Forwarded-Groups: oidc:interns']);
});

t.test('the public prefix does not cover the private route, spoofed headers or not', async (t) => {
  for (const path of ['/admin/users', '/assets/../admin/users', '/assets/%2e%2e/admin/users', '/assets%2f..%2fadmin/users']) {
    const res = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', path, SPOOFED);
    t.ok(res.status === 401 || res.status === 400, `${path} → ${res.status}`);
  }
  const intern = await stack.mint({ email: 'intern@example.com' });
  const res = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/admin/users', [...SPOOFED, `Authorization: Bearer ${intern}`]);
  t.equal(res.status, 403, "the admin route's rule reads the token, not the headers");
  t.same(seen.filter((s) => s.path.includes('admin')), [], 'the app never saw an admin path');
});

t.test('forward-auth for a public URL names no one, even for a signed-in caller', async (t) => {
  const token = await stack.mint({ email: 'intern@example.com' });
  const res = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/oauth2/auth', [
    'X-Original-URL: https://gw.test/assets/a.css',
    `Authorization: Bearer ${token}`,
    'X-Auth-Request-User: boss@example.com',
  ]);
  t.equal(res.status, 202);
  t.same(res.headers.filter(([name]) => /^x-auth-request-/i.test(name)), [], 'no X-Auth-Request-* for nginx to hand on');
});

t.test("a public route: the caller's own credential of our issuer is not handed to the application", async (t) => {
  // A single-page app on the gateway's host sends its bearer token with every request, its public
  // assets included. On a route with a rule the proxy consumes it (and hands it on only with
  // passAccessToken); a public route reads no credential, so nothing vouches for the app that gets it,
  // and the token (audience: ours) opens every other route for whoever holds it. docs/security.md:
  // "a JWT naming a configured issuer is never passed through".
  const token = await stack.mint({ email: 'boss@example.com' });
  const res = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/assets/app.js', [`Authorization: Bearer ${token}`]);
  t.equal(res.status, 200, 'the public asset is served');
  const sent = seen.find((s) => s.path === '/assets/app.js');
  t.ok(sent, 'the app was sent the request (the test can tell)');
  t.equal(
    sent?.headers.authorization === undefined ? 'no Authorization' : sent.headers.authorization === `Bearer ${token}` ? "the caller's token" : 'another Authorization',
    'no Authorization',
    'the public app was not sent the Authorization line',
  );
  const replay = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/admin/users', [`Authorization: ${String(sent?.headers.authorization ?? '')}`]);
  t.comment(`the app replaying what it was sent on /admin → ${replay.status}`);
});
