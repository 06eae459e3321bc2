// Attack class: an upstream that plants the proxy's own cookies. Behind the SSO
// gateway sit applications the proxy's operators do not all control; one that is
// compromised (or merely careless) answers with `Set-Cookie: __Host-kfp-session=…`
// and the browser, which sees one origin, replaces the person's session with one
// the application chose (session fixation: the person then acts as the attacker's
// account), or plants a login-state cookie to break or steer the next login. No CVE of
// its own; the reverse-proxy form of cookie tossing (RFC 6265bis §8.6 "Weak
// Integrity"). The same rule holds on a refused or accepted upgrade's head
// (src/proxy/response-headers.ts is shared with the tunnel).
//
// A Set-Cookie whose cookie (as the browser will store and send it) is one of the
// proxy's own never reaches the browser; every other Set-Cookie line passes unchanged.
// The other way, the proxy's cookies the browser sends never reach the upstream either.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { Pool, request } from 'undici';
import { createContext } from '../../src/request/context.js';
import { forward } from '../../src/proxy/forward.js';
import { clientResponseHeaders } from '../../src/proxy/response-headers.js';
import { devPki, startStack, untilReady } from '../helpers/stack.js';

const SESSION = '__Host-kfp-session';
/** The login-state cookie (src/login/login-state.ts). */
const LOGIN_STATE = '__Host-kfp-login';

const PLANTED = [
  `${SESSION}=planted; Path=/; Secure; HttpOnly; SameSite=Lax`,
  `${SESSION} = spaced; Path=/; Secure`,
  // A cookie with an empty name is sent back as its value alone: "__Host-kfp-session=nameless".
  `=${SESSION}=nameless; Path=/; Secure`,
  `${LOGIN_STATE}=planted; Path=/; Secure; HttpOnly`,
];
const KEPT = [
  'app=1; Path=/; HttpOnly',
  `${SESSION}_other=1; Path=/`,
  // One cookie named theme; what follows the first ";" is an (unknown) attribute.
  `theme=dark; ${SESSION}=attribute`,
  'lang=en',
];

/** Listens on a free loopback port until the test ends; the port. */
async function serve(t: { teardown(fn: () => unknown): void }, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/** A compromised application behind the gateway: every answer tries to set the proxy's cookies. */
async function startPlantingUpstream(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const pki = await devPki();
  const server = createServer({ cert: await readFile(pki.upstreamCert), key: await readFile(pki.upstreamKey) }, (_req, res) => {
    // Interleaved, so a filter that keeps order is visible.
    res.writeHead(200, ['Content-Type', 'text/plain', ...[PLANTED[0], KEPT[0], PLANTED[1], KEPT[1], PLANTED[2], KEPT[2], PLANTED[3], KEPT[3]].flatMap((c) => ['Set-Cookie', c])]);
    res.end('hello');
  });
  return `https://127.0.0.1:${await serve(t, server)}`;
}

const ownsCookie = (name: string) => name === SESSION || name === LOGIN_STATE;

t.test('forward() relays every Set-Cookie but those of cookies the proxy owns', async (t) => {
  const upstreamURL = await startPlantingUpstream(t);
  const pool = new Pool(upstreamURL, { connect: { ca: await readFile((await devPki()).upstreamCA) } });
  t.teardown(() => pool.close());
  const front = createHttpServer((req, res) =>
    forward(req, res, createContext(req, false), [], pool, { responseTimeout: 5_000, ownsCookie, onError: (code) => res.writeHead(599, code).end() }),
  );
  const res = await request(`http://127.0.0.1:${await serve(t, front)}/app`);
  t.equal(res.statusCode, 200);
  t.equal(await res.body.text(), 'hello');
  t.same(res.headers['set-cookie'], KEPT, 'only the other cookies, unchanged and in order');
});

t.test('the filter the tunnel shares: a 101 keeps its switch, loses planted cookies; other heads lose hop-by-hop lines', async (t) => {
  const head = ['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Accept', 'abc=', 'Set-Cookie', PLANTED[0], 'Set-Cookie', KEPT[0]];
  t.same(clientResponseHeaders(101, head, ownsCookie), ['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Accept', 'abc=', 'Set-Cookie', KEPT[0]]);
  const refusal = ['Content-Type', 'application/json', 'Connection', 'keep-alive, X-Hop', 'Keep-Alive', 'timeout=5', 'X-Hop', '1', 'Transfer-Encoding', 'chunked', 'Proxy-Foo', 'x', ...PLANTED.flatMap((c) => ['set-cookie', c])];
  t.same(clientResponseHeaders(403, refusal, ownsCookie), ['Content-Type', 'application/json']);
  t.same(clientResponseHeaders(200, ['Set-Cookie', PLANTED[0]], () => false), ['Set-Cookie', PLANTED[0]], 'without browser login no cookie is ours');
});

t.test("the upstream's Set-Cookie for the proxy's own cookies never reaches the browser", async (t) => {
  const upstreamURL = await startPlantingUpstream(t);
  const stack = await startStack(t, { login: { dir: t.testdir() }, configure: (c) => ({ ...c, upstream: { ...c.upstream, url: upstreamURL } }) });
  await untilReady(stack.proxy);
  t.equal(stack.config.authentication.session!.cookie.name, SESSION, 'the session cookie has its default name');
  const authorization = `Bearer ${await stack.mint()}`;

  t.test('HTTP/1.1', async (t) => {
    const res = await stack.fetch('/app', { headers: { authorization } });
    t.equal(res.statusCode, 200);
    t.equal(await res.body.text(), 'hello');
    t.same(res.headers['set-cookie'], KEPT, 'only the other cookies, unchanged and in order');
  });

  t.test('HTTP/2', async (t) => {
    const session = http2Connect(stack.proxy.url, { ca: stack.servingCA });
    session.on('error', () => {});
    t.teardown(() => session.close());
    const stream = session.request({ ':path': '/app', authorization });
    const [head] = (await once(stream, 'response')) as [Record<string, unknown>];
    stream.resume();
    t.equal(head[':status'], 200);
    t.same(head['set-cookie'], KEPT, 'only the other cookies, unchanged and in order');
  });
});

t.test("the proxy's cookies the browser sends never reach the upstream (Login.ownsCookie)", async (t) => {
  const stack = await startStack(t, { login: { dir: t.testdir() } });
  await untilReady(stack.proxy);
  const res = await stack.fetch('/debug/headers', { headers: { authorization: `Bearer ${await stack.mint()}`, cookie: `${LOGIN_STATE}=sealed; app=1` } });
  t.equal(res.statusCode, 200);
  const { headers } = (await res.body.json()) as { headers: [string, string][] };
  t.same(headers.filter(([name]) => name.toLowerCase() === 'cookie'), [['Cookie', 'app=1']], 'the login-state cookie is removed, the others kept');
});
