// Attack class: redirect_uri host injection at the login (the authorization code sent
// to a host the attacker controls). On the SSO gateway a route host outside the cookie
// domain (a foreign host) signs in on itself: the proxy builds its callback URL,
// `https://<Host><prefix>/callback`, from the request's Host, once the router says
// that Host is a route host. With a wildcard route (`*.partner.test`) the router's
// test is "one more label, no dot in it", read on the Host as sent; the URL is then
// read by the provider and the browser with WHATWG/RFC 3986 rules, where `/`, `#`,
// `?` and `@` end or split the authority. A Host of `2130706433/.partner.test` is
// one label under partner.test to the router and `https://2130706433/…` to a URL
// parser: 2130706433 is 127.0.0.1, and a decimal IPv4 address needs no dot, so any
// address the attacker holds can be spelt this way.
//
// What the attack needs beyond the proxy: the provider must accept the redirect_uri
// (it does when redirect URIs are matched by pattern or prefix rather than exactly);
// the login then continues at the attacker's callback with the victim's code, and the
// attacker, holding the login-state cookie of the same /start, finishes it at the
// real callback with the same spoofed Host (the token exchange derives redirect_uri
// the same way) and ends with the victim's session.
//
// Contract: the callback URL the proxy gives the provider names a host the router
// would route there, whatever the Host header says; X-Forwarded-Host never counts.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import { connect } from 'node:tls';
import t from 'tap';
import { Agent, request } from 'undici';
import { devPki, startStack, untilReady } from '../helpers/stack.js';

const pki = await devPki();
const app = createServer({ cert: await readFile(pki.upstreamCert), key: await readFile(pki.upstreamKey) }, (_req, res) => res.end('app'));
app.listen(0, '127.0.0.1');
await once(app, 'listening');
t.teardown(() => app.close());
const appUpstream = { url: `https://127.0.0.1:${(app.address() as { port: number }).port}`, caFile: pki.upstreamCA, identity: 'application' as const };

const stack = await startStack(t, {
  login: { dir: t.testdir() },
  configure: (base) => {
    const { upstream: _dev, ...rest } = base;
    return {
      ...rest,
      routes: [
        { name: 'partners', host: '*.partner.test', upstream: appUpstream },
        { name: 'home', host: '127.0.0.1', upstream: appUpstream },
      ],
    };
  },
});
await untilReady(stack.proxy);

/** The redirect_uri the proxy sends the provider for a login started with these header lines. */
async function redirectURIFor(host: string, lines: string[] = []): Promise<{ status: number; redirectURI: string | undefined; location: string | undefined }> {
  const raw = await rawStart(host, lines);
  const location = raw.location;
  const redirectURI = location && URL.canParse(location) ? (new URL(location).searchParams.get('redirect_uri') ?? undefined) : undefined;
  return { status: raw.status, redirectURI, location };
}

/** GET /oauth2/start with exactly this Host, as raw bytes. */
async function rawStart(host: string, lines: string[]): Promise<{ status: number; location: string | undefined }> {
  const { hostname, port } = new URL(stack.proxy.url);
  const socket = connect({ host: hostname, port: Number(port), ca: stack.servingCA });
  t.teardown(() => socket.destroy());
  await once(socket, 'secureConnect');
  socket.write(`GET /oauth2/start?rd=%2F HTTP/1.1\r\nHost: ${host}\r\n${lines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'end');
  const head = Buffer.concat(chunks).toString('latin1').split('\r\n\r\n')[0];
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), location: /\r\nlocation: ([^\r]*)/i.exec(head)?.[1] };
}

/** A host a route pattern `*.partner.test` covers, read as a browser and the provider read it. */
const coveredByPartners = (url: string) => {
  const { hostname } = new URL(url);
  return hostname.endsWith('.partner.test') && !hostname.slice(0, -'.partner.test'.length).includes('.');
};

t.test('a foreign wildcard host gets its own callback, on that host (the feature the attack rides on)', async (t) => {
  const { status, redirectURI } = await redirectURIFor('a.partner.test');
  t.equal(status, 303, 'sent to the provider');
  t.equal(redirectURI, 'https://a.partner.test/oauth2/callback');
});

t.test('a Host the router reads as one label under the wildcard but a URL parser reads as another host', async (t) => {
  for (const host of ['2130706433/.partner.test', '2130706433#.partner.test', '2130706433?.partner.test', '2130706433\\.partner.test', 'a@2130706433#.partner.test']) {
    const { status, redirectURI } = await redirectURIFor(host);
    t.comment(`Host: ${host} → ${status} redirect_uri=${redirectURI}`);
    // A 400 (the Host is no host name) or the configured callback are both safe.
    const safe = status === 400 || redirectURI === undefined || coveredByPartners(redirectURI) || redirectURI === stack.config.authentication.session?.oidc.redirectURL;
    t.ok(safe, `Host ${JSON.stringify(host)}: the callback ${JSON.stringify(redirectURI)} names a partner host, or the login is refused`);
    t.equal(status, 400, `Host ${JSON.stringify(host)} is no host name: 400`);
  }
});

t.test('the provider registered exact URIs: it refuses an unregistered name under the wildcard (the backstop docs/security.md names)', async (t) => {
  const { location, redirectURI } = await redirectURIFor('unregistered.partner.test');
  t.equal(redirectURI, 'https://unregistered.partner.test/oauth2/callback', 'a host name under the wildcard asks for its own callback');
  t.ok(location?.startsWith(stack.issuer.url), 'sent to the provider');
  const agent = new Agent({ connect: { ca: stack.servingCA } });
  t.teardown(() => agent.close());
  const res = await request(location!, { dispatcher: agent });
  const body = await res.body.text();
  t.equal(res.statusCode, 400, 'the provider answers 400');
  t.match(body, /redirect_uri/, 'because of the redirect_uri');
});

t.test('X-Forwarded-Host and a Host no route names never choose the callback', async (t) => {
  const configured = stack.config.authentication.session?.oidc.redirectURL;
  t.equal((await redirectURIFor('127.0.0.1', ['X-Forwarded-Host: a.partner.test'])).redirectURI, configured);
  t.equal((await redirectURIFor('evil.test')).redirectURI, configured);
  t.equal((await redirectURIFor('a.b.partner.test')).redirectURI, configured, 'two labels under the wildcard: no route host');
  const userinfo = await redirectURIFor('a.partner.test:1@evil.test');
  t.ok(userinfo.status === 400 || userinfo.redirectURI === configured, `userinfo in Host: ${userinfo.status} ${String(userinfo.redirectURI)}`);
});
