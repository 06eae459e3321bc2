// Attack class: request targets that are not a path. A client writes
// `GET https://other-host/api HTTP/1.1` (absolute-form, RFC 9112 §3.2.2), hoping
// the proxy passes the URL on and the upstream routes by the host in it (Go's
// net/http sets Request.Host from it, ignoring Host: a virtual-hosting upstream
// then serves another site than the one the proxy admitted the request for).
// `OPTIONS *` (asterisk-form) and a target with a #fragment have no path the
// proxy could forward faithfully. No CVE of its own; the "absolute URL" variant of
// PortSwigger's routing-based SSRF ("Cracking the lens", 2017).
//
// The upstream must only ever see origin-form (`/path?query`); an absolute URL
// for the host the client addressed is read as its path and query; one for any
// other host, and every other kind of target, is a 400 Status.
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import t from 'tap';
import { createContext } from '../../src/request/context.js';
import { rawRequest } from '../kube/helpers/raw-http.js';
import { startStack, untilReady } from '../helpers/stack.js';

t.test('through the proxy to the dev upstream', async (t) => {
  const stack = await startStack(t);
  await untilReady(stack.proxy);
  const auth = `Authorization: Bearer ${await stack.mint()}`;
  const { host } = new URL(stack.proxy.url);
  const send = (method: string, target: string, lines = [auth]) => rawRequest(stack.proxy.url, stack.servingCA, method, target, lines);
  const lastSeen = () => stack.upstream.seen.at(-1);

  t.test('an absolute URL for the host the client addressed reaches the upstream as its path and query', async (t) => {
    for (const [target, expected] of [
      [`https://${host}/debug/headers?x=1`, '/debug/headers?x=1'],
      [`HTTPS://${host.toUpperCase()}/debug/headers`, '/debug/headers'],
      [`https://${host}?watch=1`, '/?watch=1'],
      [`https://${host}`, '/'],
    ] as const) {
      const res = await send('GET', target);
      t.not(res.status, 400, `${target}: accepted (${res.status})`);
      t.equal(lastSeen()?.url, expected, `${target}: the upstream's request line has ${expected}`);
      t.equal(lastSeen()?.auditId, res.header('audit-id'), `${target}: it is this request`);
    }
  });

  t.test('an absolute URL for another host never reaches the upstream: 400', async (t) => {
    for (const target of [
      'https://other-host/version?x',
      'http://other-host/version',
      `https://user@${host}/version`,
      `https://${host}.evil.example/version`,
      'ftp://other-host/version',
    ]) {
      const before = stack.upstream.seen.length;
      const res = await send('GET', target);
      t.equal(res.status, 400, `${target}: 400`);
      t.match(JSON.parse(res.body), { kind: 'Status', reason: 'BadRequest', code: 400 }, `${target}: a Status`);
      t.equal(stack.upstream.seen.length, before, `${target}: nothing reached the upstream`);
    }
  });

  t.test('asterisk-form and a target with a fragment: 400, and the proxy keeps serving', async (t) => {
    for (const [method, target] of [
      ['OPTIONS', '*'],
      ['GET', '*'],
      ['GET', '/version#fragment'],
    ] as const) {
      const before = stack.upstream.seen.length;
      const res = await send(method, target);
      t.equal(res.status, 400, `${method} ${target}: 400`);
      t.match(JSON.parse(res.body), { kind: 'Status', code: 400 }, `${method} ${target}: a Status`);
      t.equal(stack.upstream.seen.length, before, `${method} ${target}: nothing reached the upstream`);
    }
    t.equal((await send('GET', '/version')).status, 200, 'an ordinary request still works');
  });

  t.test('HTTP/2: OPTIONS * is a 400 Status; an absolute :path is refused by the protocol layer', async (t) => {
    const session: ClientHttp2Session = http2Connect(stack.proxy.url, { ca: stack.servingCA });
    session.on('error', () => {});
    t.teardown(() => session.close());
    const h2 = (headers: Record<string, string>) =>
      new Promise<number | string>((resolve) => {
        const stream = session.request({ authorization: auth.slice('Authorization: '.length), ...headers });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', (err) => resolve((err as Error).message));
        stream.resume();
      });
    const before = stack.upstream.seen.length;
    t.equal(await h2({ ':method': 'OPTIONS', ':path': '*' }), 400);
    t.match(await h2({ ':method': 'GET', ':path': 'https://other-host/version' }), /PROTOCOL_ERROR/);
    t.equal(stack.upstream.seen.length, before, 'nothing reached the upstream');
    t.equal(await h2({ ':method': 'GET', ':path': '/version' }), 200, 'the session still serves');
  });
});

/** A request as createContext reads it: method, target, Host and the connection's address. */
function fakeRequest(method: string, url: string, host: string | undefined): IncomingMessage {
  return { method, url, headers: host === undefined ? {} : { host }, httpVersion: '1.1', socket: { remoteAddress: '192.0.2.1' } as Socket } as IncomingMessage;
}

t.test('the request context holds origin-form for every later stage (login routes, audit, forwarding)', async (t) => {
  const cases: Array<[string, string | undefined, string, string, boolean]> = [
    // target, Host, ctx.target, ctx.path, refused
    ['/api/v1/pods?watch=1', 'proxy.example', '/api/v1/pods?watch=1', '/api/v1/pods', false],
    ['https://proxy.example/oauth2/start?rd=/x', 'proxy.example', '/oauth2/start?rd=/x', '/oauth2/start', false],
    ['https://proxy.example:443/api', 'proxy.example', '/api', '/api', false],
    ['https://Proxy.Example:8443/api', 'proxy.example:8443', '/api', '/api', false],
    ['https://other-host/oauth2/start', 'proxy.example', '/oauth2/start', '/oauth2/start', true],
    ['https://proxy.example/api', undefined, '/api', '/api', true],
    ['https://[::1/api', 'proxy.example', '/api', '/api', true],
    ['*', 'proxy.example', '*', '*', true],
    ['/a#b', 'proxy.example', '/a#b', '/a#b', true],
    ['proxy.example:443', 'proxy.example', 'proxy.example:443', 'proxy.example:443', true],
  ];
  for (const [target, host, origin, path, refused] of cases) {
    const ctx = createContext(fakeRequest('GET', target, host), false);
    t.same({ target: ctx.target, path: ctx.path, badTarget: ctx.badTarget }, { target: origin, path, badTarget: refused }, `${target} (Host ${host})`);
  }
});
