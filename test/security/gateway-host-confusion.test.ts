// Attack class: host confusion on the SSO gateway. Routes are chosen by host first,
// so whoever picks the host the router reads picks the rule. The attacker wants the
// router and the application to disagree: the router reading a public (or lax)
// route's host while the request, or the host the app is told (X-Forwarded-Host, from
// which apps build absolute links: password resets, OAuth redirects, CSRF origins),
// names another. Spellings tried: case, trailing dot, port, IPv6 literals, absolute-
// form targets naming another host, HTTP/2 :authority against a Host header, two Host
// lines, and characters a URL parser reads as the end of the authority (`/`, `#`,
// `?`, `\`, `@`) inside a name a `*.` route covers. And a crash or hang: the proxy
// must go on answering after all of it.
//
// Contract: an anonymous request never reaches the route with a rule; the host an
// application is told is, read as a URL's authority, a host its own route covers
// (or the request is refused with 400).
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect as connectHttp2 } from 'node:http2';
import { createServer } from 'node:https';
import { connect } from 'node:tls';
import t from 'tap';
import { devPki, startStack, untilReady } from '../helpers/stack.js';

const pki = await devPki();

interface Seen {
  readonly app: string;
  readonly path: string;
  readonly forwardedHost: string[];
}
const seen: Seen[] = [];

async function startApp(name: string): Promise<string> {
  const server = createServer({ cert: await readFile(pki.upstreamCert), key: await readFile(pki.upstreamKey) }, (req, res) => {
    const forwardedHost = req.rawHeaders.filter((_, i) => i % 2 === 1 && req.rawHeaders[i - 1].toLowerCase() === 'x-forwarded-host');
    seen.push({ app: name, path: req.url ?? '', forwardedHost });
    res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return `https://127.0.0.1:${(server.address() as { port: number }).port}`;
}
const [finance, status, partner] = await Promise.all(['finance', 'status', 'partner'].map(startApp));

const stack = await startStack(t, {
  configure: (base) => {
    const { upstream: _dev, ...rest } = base;
    const app = (url: string) => ({ url, caFile: pki.upstreamCA, identity: 'application' as const });
    return {
      ...rest,
      routes: [
        { name: 'finance', host: 'finance.gw.test', upstream: app(finance), allow: { groups: ['oidc:finance'] } },
        { name: 'status', host: 'status.gw.test', upstream: app(status), public: true },
        { name: 'partner', host: '*.partner.test', upstream: app(partner), public: true },
      ],
    };
  },
});
await untilReady(stack.proxy);
const { hostname, port } = new URL(stack.proxy.url);

/** Raw HTTP/1.1 bytes (head lines as given, Host included); the status, or 0 when the connection closed without one. */
async function raw(requestLine: string, lines: readonly string[]): Promise<number> {
  const socket = connect({ host: hostname, port: Number(port), ca: stack.servingCA, ALPNProtocols: ['http/1.1'] });
  t.teardown(() => socket.destroy());
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  socket.write(`${requestLine}\r\n${[...lines, 'Connection: close'].map((l) => `${l}\r\n`).join('')}\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await Promise.race([once(socket, 'close'), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'))?.[1] ?? 0);
}

/** The host a URL parser reads in an X-Forwarded-Host value, or undefined when it reads none. */
const parsedHost = (value: string) => (URL.canParse(`https://${value}/`) ? new URL(`https://${value}/`).hostname : undefined);

/** What each app was told, checked against its own route: finance and status exactly, partner one label under partner.test. */
function toldItsOwnHost(s: Seen): boolean {
  if (s.forwardedHost.length !== 1) return false;
  const host = parsedHost(s.forwardedHost[0]);
  if (host === undefined) return false;
  if (s.app === 'partner') return host.endsWith('.partner.test') && !host.slice(0, -'.partner.test'.length).includes('.');
  return host === `${s.app}.gw.test`;
}

t.test('spellings of the host: case, trailing dot, port, brackets — finance stays behind its rule', async (t) => {
  seen.length = 0;
  for (const host of ['FINANCE.gw.test', 'finance.gw.test.', 'finance.gw.test:443', 'Finance.GW.test.:8443', 'finance.gw.test:', '[finance.gw.test]', '[::1]', '[', 'finance.gw.test:x']) {
    const code = await raw('GET /ledger HTTP/1.1', [`Host: ${host}`]);
    t.ok(code === 401 || code === 400 || code === 404, `Host: ${host} → ${code}`);
  }
  t.same(seen.filter((s) => s.app === 'finance'), [], 'the finance app was sent nothing');
  t.ok(seen.every(toldItsOwnHost), 'any app reached was told its own host');
});

t.test('absolute-form targets naming another host than Host', async (t) => {
  seen.length = 0;
  t.equal(await raw('GET https://finance.gw.test/ledger HTTP/1.1', ['Host: status.gw.test']), 400);
  t.equal(await raw('GET https://status.gw.test/ledger HTTP/1.1', ['Host: finance.gw.test']), 400);
  const code = await raw('GET https://FINANCE.gw.test./ledger HTTP/1.1', ['Host: status.gw.test']);
  t.equal(code, 400, `a spelling of finance's host in the target, Host status → ${code}`);
  t.same(seen, [], 'no app was sent any of them');
});

t.test('two Host lines', async (t) => {
  seen.length = 0;
  for (const pair of [['status.gw.test', 'finance.gw.test'], ['finance.gw.test', 'status.gw.test']]) {
    const code = await raw('GET /ledger HTTP/1.1', pair.map((h) => `Host: ${h}`));
    t.ok(code === 400 || code === 401 || code === 200, `Host: ${pair.join(', Host: ')} → ${code}`);
  }
  t.same(seen.filter((s) => s.app === 'finance'), [], 'finance was sent nothing');
  t.ok(seen.every(toldItsOwnHost), `each app reached was told one host, its own: ${JSON.stringify(seen)}`);
});

t.test('HTTP/2: a host header that disagrees with :authority', async (t) => {
  seen.length = 0;
  const session = connectHttp2(stack.proxy.url, { ca: stack.servingCA });
  t.teardown(() => session.close());
  session.on('error', () => {});
  const get = (headers: Record<string, string>) =>
    new Promise<number>((resolve) => {
      const stream = session.request({ ':path': '/ledger', ...headers });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', () => resolve(0));
      stream.resume();
      stream.end();
    });
  const one = await get({ ':authority': 'finance.gw.test', host: 'status.gw.test' });
  const two = await get({ ':authority': 'status.gw.test', host: 'finance.gw.test' });
  t.comment(`:authority finance, host status → ${one}; :authority status, host finance → ${two}`);
  t.same(seen.filter((s) => s.app === 'finance'), [], 'finance was sent nothing');
  t.ok(seen.every(toldItsOwnHost), `any app reached was told its own host: ${JSON.stringify(seen)}`);
});

t.test('a name a *. route covers, with characters a URL parser ends the authority at', async (t) => {
  seen.length = 0;
  // Found: each of these is one label under partner.test to the router and 127.0.0.1 to a URL parser.
  const found = ['2130706433/.partner.test', '2130706433#.partner.test', '2130706433?.partner.test', '2130706433\\.partner.test'];
  const hosts = ['a.partner.test', 'evil@a.partner.test', ...found];
  for (const host of hosts) {
    const code = await raw('GET /reset-password HTTP/1.1', [`Host: ${host}`]);
    t.comment(`Host: ${host} → ${code}`);
    // Found by this test: these were routed and their app told the Host. A Host that is no host name is a 400 now.
    if (found.includes(host)) t.equal(code, 400, `Host ${JSON.stringify(host)} is no host name`);
  }
  t.ok(seen.some((s) => s.forwardedHost[0] === 'a.partner.test'), 'a real partner host is served (the test can tell)');
  for (const s of seen) {
    t.ok(toldItsOwnHost(s), `the partner app was told X-Forwarded-Host ${JSON.stringify(s.forwardedHost)}, which a URL parser reads as ${JSON.stringify(parsedHost(s.forwardedHost[0] ?? ''))}`);
  }
});

t.test('forward-auth and the router survive malformed hosts and original URLs, and the proxy keeps answering', async (t) => {
  const junk: Array<[string, string[]]> = [
    ['GET /oauth2/auth HTTP/1.1', ['Host: [', 'X-Original-URL: https://[/x']],
    ['GET /oauth2/auth HTTP/1.1', ['Host: status.gw.test', 'X-Original-URL: https://']],
    ['GET /oauth2/auth HTTP/1.1', ['Host: status.gw.test', 'X-Original-URL: https://status.gw.test', 'X-Original-URL: https://finance.gw.test/']],
    ['GET /oauth2/auth HTTP/1.1', ['Host: status.gw.test', 'X-Forwarded-Host: status.gw.test', 'X-Forwarded-Host: finance.gw.test', 'X-Forwarded-Uri: /']],
    ['GET /oauth2/auth/%zz HTTP/1.1', ['Host: status.gw.test']],
    ['GET /oauth2/auth?allowed_groups=%zz HTTP/1.1', ['Host: finance.gw.test', 'Authorization: Bearer x']],
    ['GET /%zz HTTP/1.1', ['Host: finance.gw.test']],
    ['GET / HTTP/1.0', []],
    ['GET / HTTP/1.1', [`Host: ${'a.'.repeat(3000)}partner.test`]],
  ];
  for (const [line, headers] of junk) {
    const code = await raw(line, headers);
    t.ok(code >= 200 && code < 600 && code !== 202 && code !== 500, `${line} ${JSON.stringify(headers).slice(0, 120)} → ${code}`);
  }
  t.equal(await raw('GET /oauth2/auth HTTP/1.1', ['Host: status.gw.test', 'X-Original-URL: https://status.gw.test/x']), 202, 'still answering: a public URL is allowed');
});

t.test('second pass: Host spellings the host check accepts, read by the router and by a URL parser', async (t) => {
  seen.length = 0;
  const hosts = [
    // IPv6: forms, a zone id (raw and escaped), v4-mapped, junk a bracket admits
    '[::1]', '[::ffff:127.0.0.1]', '[0:0:0:0:0:ffff:7f00:1]', '[fe80::1%eth0]', '[fe80::1%25eth0]', '[:::]', '[1.2.3.4]', '[::1]:443', '[::1]x',
    // ports: out of range, empty, leading zeros, too many digits
    'finance.gw.test:65536', 'finance.gw.test:99999', 'finance.gw.test:', 'finance.gw.test:00443', 'finance.gw.test:443443',
    'localhost.', 'LOCALHOST', 'localhost..',
    // one label under partner.test that a URL parser may read otherwise: numbers, underscores, punycode, hyphens
    '0x7f000001.partner.test', '127.partner.test', 'a_b.partner.test', 'xn--zz.partner.test', 'xn--nxasmq6b.partner.test', '-a.partner.test', 'a-.partner.test',
    'a.partner.test.', 'a.partner.test..', '.partner.test', 'a..partner.test', 'a.partner.test:0',
  ];
  for (const host of hosts) {
    const code = await raw('GET /ledger HTTP/1.1', [`Host: ${host}`]);
    t.ok([200, 400, 401, 404].includes(code), `Host: ${host} → ${code}`);
  }
  t.same(seen.filter((s) => s.app === 'finance'), [], 'the finance app was sent nothing');
  for (const s of seen) {
    const told = s.forwardedHost[0] ?? '';
    const parsed = parsedHost(told);
    // Found by the second pass: invalid punycode (xn--zz) passed the Host check. A Host a URL parser cannot read is a 400 now.
    t.not(parsed, undefined, `${s.app} was told X-Forwarded-Host ${JSON.stringify(told)}, which a URL parser can read`);
    if (parsed === undefined) continue;
    // The DNS name with or without its root dot is one name.
    const sameName = { ...s, forwardedHost: [told.replace(/\.$/, '').replace(/\.:/, ':')] };
    t.ok(toldItsOwnHost(sameName), `${s.app} was told X-Forwarded-Host ${JSON.stringify(s.forwardedHost)}, which a URL parser reads as ${JSON.stringify(parsed)}`);
  }
});
