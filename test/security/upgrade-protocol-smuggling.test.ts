// Attack class: protocol switches a proxy forwards but does not understand
// (h2c smuggling, Bishop Fox 2020; "TLS/1.0" upgrades; several tokens, where
// the proxy and the upstream may each pick a different one), and methods that
// open tunnels or echo requests (CONNECT, TRACE). Only the upgrades Kubernetes
// uses — one SPDY/3.1 or websocket token, by GET or POST, without a body — are
// tunnelled; everything else is refused before it reaches the upstream.
import { connect as http2Connect, constants } from 'node:http2';
import t from 'tap';
import { countResponses, openRaw, requestHead } from '../helpers/raw-tls.js';
import { startStack, untilReady } from '../helpers/stack.js';

t.test('upgrades other than one SPDY/3.1 or websocket token never reach the upstream', async (t) => {
  const stack = await startStack(t);
  await untilReady(stack.proxy);
  const token = await stack.mint();
  const { host } = new URL(stack.proxy.url);
  const exec = '/api/v1/namespaces/default/pods/web/exec?command=sh';
  const cases: Array<[string, string, string[]]> = [
    ['h2c with HTTP2-Settings', 'GET', ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA']],
    ['TLS/1.0 (RFC 2817)', 'GET', ['Connection: Upgrade', 'Upgrade: TLS/1.0']],
    ['two tokens in one line', 'GET', ['Connection: Upgrade', 'Upgrade: websocket, h2c']],
    ['two Upgrade lines', 'GET', ['Connection: Upgrade', 'Upgrade: websocket', 'Upgrade: SPDY/3.1']],
    ['a known token with a version the upstream might read differently', 'GET', ['Connection: Upgrade', 'Upgrade: websocket/13']],
    ['an upgrade with a body', 'POST', ['Connection: Upgrade', 'Upgrade: SPDY/3.1', 'Content-Length: 5']],
    ['an upgrade by PUT', 'PUT', ['Connection: Upgrade', 'Upgrade: SPDY/3.1']],
  ];
  for (const [name, method, lines] of cases) {
    t.test(name, async (t) => {
      const before = stack.upstream.seen.length;
      const conn = await openRaw(stack.proxy.url, stack.servingCA, t);
      const body = lines.some((l) => l.startsWith('Content-Length')) ? 'hello' : '';
      conn.write(requestHead(method, exec, host, [`Authorization: Bearer ${token}`, ...lines]) + body);
      const text = await conn.until((s) => s.includes('}'));
      t.match(text, /^HTTP\/1\.1 400 /, 'answered 400');
      t.match(text, /"reason":"BadRequest"/, 'with a Kubernetes Status');
      t.ok(await conn.closedWithin(2_000), 'and the connection is closed');
      t.equal(countResponses(text), 1, 'one response');
      t.equal(stack.upstream.seen.length, before, 'the upstream saw nothing');
    });
  }

  t.test('the upgrades Kubernetes uses still work, in any letter case', async (t) => {
    for (const upgrade of ['SPDY/3.1', 'spdy/3.1', 'websocket', 'WebSocket']) {
      const conn = await openRaw(stack.proxy.url, stack.servingCA, t);
      const websocket = upgrade.toLowerCase() === 'websocket' ? ['Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol: v5.channel.k8s.io'] : [];
      conn.write(requestHead('GET', exec, host, [`Authorization: Bearer ${token}`, 'Connection: Upgrade', `Upgrade: ${upgrade}`, ...websocket]));
      t.match(await conn.until((s) => s.includes('\r\n\r\n')), /^HTTP\/1\.1 101 /, `${upgrade}: 101`);
      conn.socket.destroy();
    }
  });
});

t.test('methods that open tunnels or echo requests are refused', async (t) => {
  const stack = await startStack(t);
  await untilReady(stack.proxy);
  const token = await stack.mint();
  const { host } = new URL(stack.proxy.url);

  t.test('TRACE and WebDAV-style methods over HTTP/1.1: 405 Status', async (t) => {
    for (const method of ['TRACE', 'PROPFIND', 'LINK']) {
      const before = stack.upstream.seen.length;
      const conn = await openRaw(stack.proxy.url, stack.servingCA, t);
      conn.write(requestHead(method, '/api/v1/namespaces', host, [`Authorization: Bearer ${token}`, 'Connection: close']));
      const text = await conn.until((s) => s.includes('}'));
      t.match(text, /^HTTP\/1\.1 405 /, `${method}: 405`);
      t.match(text, /"reason":"MethodNotAllowed"/, `${method}: a Kubernetes Status`);
      t.equal(stack.upstream.seen.length, before, `${method}: the upstream saw nothing`);
    }
  });

  t.test('CONNECT over HTTP/1.1 gets a Status and is closed without reaching the upstream', async (t) => {
    const before = stack.upstream.seen.length;
    const conn = await openRaw(stack.proxy.url, stack.servingCA, t);
    conn.write(requestHead('CONNECT', `127.0.0.1:${new URL(stack.upstream.url).port}`, host, [`Authorization: Bearer ${token}`]));
    t.ok(await conn.closedWithin(2_000), 'the connection is closed');
    t.match(conn.received(), /^HTTP\/1\.1 4\d\d .*"kind":"Status"/s, 'refused with a Kubernetes Status, not a tunnel');
    t.equal(stack.upstream.seen.length, before, 'the upstream saw nothing');
  });

  t.test('CONNECT over HTTP/2: refused, the upstream sees nothing', async (t) => {
    const before = stack.upstream.seen.length;
    const session = http2Connect(stack.proxy.url, { ca: stack.servingCA });
    t.teardown(() => session.destroy());
    session.on('error', () => {});
    const stream = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'CONNECT',
      [constants.HTTP2_HEADER_AUTHORITY]: `127.0.0.1:${new URL(stack.upstream.url).port}`,
      authorization: `Bearer ${token}`,
    });
    stream.on('error', () => {});
    const status = await new Promise<number | string>((resolve) => {
      stream.once('response', (headers) => resolve(Number(headers[constants.HTTP2_HEADER_STATUS])));
      stream.once('close', () => resolve(`closed with code ${stream.rstCode}`));
    });
    t.not(status, 200, `not a tunnel (${status})`);
    t.equal(stack.upstream.seen.length, before, 'the upstream saw nothing');
  });
});
