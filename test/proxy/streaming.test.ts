// Streaming through the proxy: watch events as they happen, large bodies both ways,
// and upgrade tunnels (WebSocket and SPDY/3.1) carrying bytes in both directions.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:tls';
import t from 'tap';
import WebSocket from 'ws';
import { startStack, untilReady } from '../helpers/stack.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('streaming', async (t) => {
  const stack = await startStack(t);
  await untilReady(stack.proxy);
  const token = await stack.mint();
  const auth = { authorization: `Bearer ${token}` };

  t.test('a watch sends its head at once and each event as it is emitted', async (t) => {
    const res = await stack.fetch('/api/v1/namespaces/default/pods?watch=true', { headers: auth });
    t.equal(res.statusCode, 200, 'head arrives before any event');
    const lines: string[] = [];
    let buffered = '';
    const next = () =>
      new Promise<string>((resolve) => {
        const take = () => {
          const nl = buffered.indexOf('\n');
          if (nl < 0) return false;
          resolve(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
          return true;
        };
        if (take()) return;
        const onData = (chunk: Buffer) => {
          buffered += chunk.toString();
          if (take()) res.body.off('data', onData);
        };
        res.body.on('data', onData);
      });
    for (const type of ['ADDED', 'MODIFIED', 'DELETED'] as const) {
      stack.upstream.emitPodEvent('default', type);
      lines.push(await next()); // would hang (and time out) if the proxy buffered events
    }
    t.same(lines.map((l) => JSON.parse(l).type), ['ADDED', 'MODIFIED', 'DELETED']);
    res.body.destroy();
  });

  t.test('8 MiB request body streamed up and back intact', async (t) => {
    const body = randomBytes(8 * 1024 * 1024);
    const res = await stack.fetch('/debug/echo', { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body });
    t.equal(res.statusCode, 200);
    const echoed = Buffer.from(await res.body.arrayBuffer());
    t.equal(echoed.length, body.length);
    t.equal(sha(echoed), sha(body));
  });

  t.test('8 MiB response body intact', async (t) => {
    const n = 8 * 1024 * 1024;
    const res = await stack.fetch(`/debug/bytes?n=${n}`, { headers: auth });
    t.equal(res.statusCode, 200);
    const got = Buffer.from(await res.body.arrayBuffer());
    t.equal(got.length, n);
    const direct = await stack.direct(`/debug/bytes?n=${n}`, { headers: { 'X-Remote-User': 'direct' } });
    t.equal(direct.statusCode, 200);
    t.equal(sha(got), sha(Buffer.from(await direct.body.arrayBuffer())), 'same bytes as the upstream sends directly');
  });

  t.test('WebSocket exec tunnel carries messages both ways', async (t) => {
    const seenBefore = stack.upstream.seen.length;
    const ws = new WebSocket(`${stack.proxy.url.replace('https', 'wss')}/api/v1/namespaces/default/pods/p/exec?command=sh`, ['v5.channel.k8s.io'], {
      ca: stack.servingCA,
      headers: auth,
    });
    await once(ws, 'open');
    t.equal(ws.protocol, 'v5.channel.k8s.io', "the upstream's 101 headers reach the client");
    const payload = randomBytes(64 * 1024);
    ws.send(payload);
    const [echo] = (await once(ws, 'message')) as [Buffer];
    t.equal(sha(Buffer.from(echo)), sha(payload));
    ws.close();
    await once(ws, 'close');
    const seen = stack.upstream.seen.slice(seenBefore).find((s) => s.url.includes('/exec'));
    t.equal(seen?.user?.username, 'minted@example.com', 'the upstream authenticated the tunnel as the user');
  });

  t.test('SPDY/3.1 tunnel carries bytes both ways', async (t) => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(stack.proxy.url).port), ca: stack.servingCA, servername: 'localhost' });
    await once(socket, 'secureConnect');
    socket.write(
      'POST /api/v1/namespaces/default/pods/p/portforward HTTP/1.1\r\n' +
        'Host: localhost\r\n' +
        `Authorization: Bearer ${token}\r\n` +
        'Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
        'X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n',
    );
    let received = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    const until = async (pred: () => boolean) => {
      while (!pred()) await once(socket, 'data');
    };
    await until(() => received.includes('\r\n\r\n'));
    const headEnd = received.indexOf('\r\n\r\n') + 4;
    const head = received.subarray(0, headEnd).toString();
    t.match(head, /^HTTP\/1\.1 101 /);
    t.match(head, /x-stream-protocol-version: portforward\.k8s\.io/i);
    received = received.subarray(headEnd);
    const payload = randomBytes(256 * 1024);
    socket.write(payload);
    await until(() => received.length >= payload.length);
    t.equal(sha(received), sha(payload));
    socket.destroy();
  });

  t.test('an unauthenticated upgrade gets 401 and never reaches the upstream', async (t) => {
    const before = stack.upstream.seen.length;
    const ws = new WebSocket(`${stack.proxy.url.replace('https', 'wss')}/api/v1/namespaces/default/pods/p/exec`, { ca: stack.servingCA });
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }];
    t.equal(res.statusCode, 401);
    t.equal(stack.upstream.seen.length, before);
  });
});
