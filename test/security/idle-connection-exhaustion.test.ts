// Attack class: idle connection exhaustion. Connections that never start TLS, stall
// halfway through the handshake, or finish it and then never send a request, each hold
// a file descriptor (and memory) until something closes them; a few thousand exhaust the
// proxy. This is slowloris moved below HTTP: Node's fix for the HTTP form
// (CVE-2018-12122, headersTimeout) does not cover a connection that has sent no HTTP byte.
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect as h2connect, type IncomingHttpHeaders } from 'node:http2';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import t from 'tap';
import { startStack, untilReady, type Stack } from '../helpers/stack.js';

const HANDSHAKE_TIMEOUT_MS = 500;
const HEADER_TIMEOUT_MS = 1000;
const KEEP_ALIVE_TIMEOUT_MS = 1500;
/** Timers, the proxy's 1 s check interval for HTTP/1.1 timeouts, and a busy 2-core machine. */
const SLACK_MS = 1500;

const openDescriptors = () => readdirSync('/proc/self/fd').length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first flight a real TLS client sends: its ClientHello (captured by a plain TCP server). */
async function captureClientHello(): Promise<Buffer> {
  const server = createNetServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const hello = new Promise<Buffer>((resolve) => server.once('connection', (s) => s.once('data', (d: Buffer) => (resolve(d), s.destroy()))));
  const client = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] });
  client.on('error', () => {});
  const bytes = await hello;
  client.destroy();
  server.close();
  return bytes;
}

/** A client socket and how long it lived: resolves with its lifetime when the server closes it. */
interface Held {
  readonly socket: Socket;
  readonly closed: Promise<number>;
}

function hold(socket: Socket): Held {
  const opened = Date.now();
  socket.on('error', () => {});
  socket.resume();
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve(Date.now() - opened))) };
}

/** How many of `held` the server closed within `withinMs` of now, and the shortest and longest lifetimes of those. */
interface Outcome {
  readonly closed: number;
  readonly stillOpen: number;
  readonly min: number;
  readonly max: number;
}

/** Waits up to `withinMs` for the server to close every held socket; does not close any itself. */
async function serverClosed(held: readonly Held[], withinMs: number): Promise<Outcome> {
  const settled = await Promise.all(held.map((h) => Promise.race([h.closed, sleep(withinMs).then(() => undefined)])));
  const lives = settled.filter((ms): ms is number => ms !== undefined);
  return { closed: lives.length, stillOpen: settled.length - lives.length, min: Math.min(...lives), max: Math.max(0, ...lives) };
}

const describe = (o: Outcome) => `${o.closed} closed (after ${o.min}–${o.max} ms), ${o.stillOpen} still open`;

function proxyPort(stack: Stack): number {
  return Number(new URL(stack.proxy.url).port);
}

async function startLimitedStack(t: Parameters<typeof startStack>[0], http2: boolean): Promise<{ stack: Stack; auth: { authorization: string } }> {
  const stack = await startStack(t, {
    configure: (c) => ({
      ...c,
      listen: { ...c.listen, http2, handshakeTimeout: `${HANDSHAKE_TIMEOUT_MS}ms`, headerTimeout: `${HEADER_TIMEOUT_MS}ms`, bodyTimeout: '2s', keepAliveTimeout: `${KEEP_ALIVE_TIMEOUT_MS}ms` },
    }),
  });
  await untilReady(stack.proxy);
  return { stack, auth: { authorization: `Bearer ${await stack.mint()}` } };
}

for (const http2 of [true, false]) {
  t.test(`listen.http2: ${http2}`, async (t) => {
    const { stack, auth } = await startLimitedStack(t, http2);
    const port = proxyPort(stack);
    const served = async () => {
      const res = await stack.fetch('/api', { headers: auth });
      await res.body.dump();
      return res.statusCode;
    };

    t.test('connections that never finish the TLS handshake are closed after listen.handshakeTimeout', async (t) => {
      t.equal(await served(), 200, 'served before the flood');
      const before = openDescriptors();
      const hello = await captureClientHello();
      const connectRaw = async () => {
        const socket = netConnect({ host: '127.0.0.1', port });
        await once(socket, 'connect');
        return hold(socket);
      };
      // 200 that send nothing, 50 that send half a ClientHello, 10 that drip it a byte
      // every 100 ms (an idle timer would be re-armed by each byte; a deadline is not).
      const silent = await Promise.all(Array.from({ length: 200 }, connectRaw));
      const partial = await Promise.all(Array.from({ length: 50 }, connectRaw));
      for (const h of partial) h.socket.write(hello.subarray(0, hello.length >> 1));
      const dripping = await Promise.all(Array.from({ length: 10 }, connectRaw));
      let sent = 0;
      const drip = setInterval(() => {
        for (const h of dripping) if (!h.socket.destroyed) h.socket.write(hello.subarray(sent, sent + 1));
        sent++;
      }, 100);
      t.teardown(() => clearInterval(drip));
      const all = [...silent, ...partial, ...dripping];
      t.teardown(() => all.forEach((h) => h.socket.destroy()));
      const during = openDescriptors();
      // Each connection is two descriptors in this process: the test's end and the proxy's.
      t.ok(during >= before + all.length, `the flood holds descriptors (${before} → ${during})`);
      t.equal(await served(), 200, 'a normal client is served during the flood');

      const bound = HANDSHAKE_TIMEOUT_MS + SLACK_MS;
      const [s, p, d] = await Promise.all([serverClosed(silent, bound), serverClosed(partial, bound), serverClosed(dripping, bound)]);
      clearInterval(drip);
      t.equal(s.stillOpen, 0, `silent connections closed within ${bound} ms: ${describe(s)}`);
      t.equal(p.stillOpen, 0, `half-ClientHello connections closed within ${bound} ms: ${describe(p)}`);
      t.equal(d.stillOpen, 0, `dripping ClientHello connections closed within ${bound} ms: ${describe(d)}`);
      t.ok(Math.min(s.min, p.min, d.min) >= HANDSHAKE_TIMEOUT_MS - 50, 'none closed before handshakeTimeout');
      // Counted before this test closes any socket of its own: only the proxy can have freed them.
      const after = openDescriptors();
      t.ok(after <= before + 10, `descriptors back to where they were (${before} → ${during} → ${after})`);
      t.equal(await served(), 200, 'served after the flood');
    });

    t.test('a connection that finishes TLS and never sends a request is closed', async (t) => {
      const connectTls = async (alpn: string) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ca: stack.servingCA, servername: 'localhost', ALPNProtocols: [alpn] });
        await once(socket, 'secureConnect');
        return hold(socket);
      };
      const http1 = await Promise.all(Array.from({ length: 20 }, () => connectTls('http/1.1')));
      t.teardown(() => http1.forEach((h) => h.socket.destroy()));
      // Node's HTTP/1.1 code counts headersTimeout from the connection's start, checked every second.
      const bound1 = HEADER_TIMEOUT_MS + SLACK_MS;
      const r1 = await serverClosed(http1, bound1);
      t.equal(r1.stillOpen, 0, `HTTP/1.1: closed within headerTimeout + slack, ${bound1} ms: ${describe(r1)}`);
      t.ok(r1.min >= HEADER_TIMEOUT_MS - 50, 'not before headerTimeout');
      if (!http2) return;

      // h2 negotiated, and not even the connection preface follows.
      const h2 = await Promise.all(Array.from({ length: 20 }, () => connectTls('h2')));
      t.teardown(() => h2.forEach((h) => h.socket.destroy()));
      const bound2 = KEEP_ALIVE_TIMEOUT_MS + SLACK_MS;
      const r2 = await serverClosed(h2, bound2);
      t.equal(r2.stillOpen, 0, `h2 without a preface: closed within keepAliveTimeout + slack, ${bound2} ms: ${describe(r2)}`);
    });

    t.test('an HTTP/2 session that never opens a stream is closed after keepAliveTimeout, even while it pings', { skip: !http2 && 'HTTP/2 is off' }, async (t) => {
      const open = (pinging: boolean) => {
        const session = h2connect(stack.proxy.url, { ca: stack.servingCA });
        session.on('error', () => {});
        t.teardown(() => session.destroy());
        // PING frames are not requests: they must not keep a session with nothing to do alive.
        const pinger = pinging ? setInterval(() => !session.closed && session.ping((err) => err || acks++), 300) : undefined;
        const opened = Date.now();
        return new Promise<number>((resolve) => session.once('close', () => (clearInterval(pinger), resolve(Date.now() - opened))));
      };
      let acks = 0;
      const held = [...Array.from({ length: 10 }, () => open(false)), ...Array.from({ length: 10 }, () => open(true))];
      const bound = KEEP_ALIVE_TIMEOUT_MS + SLACK_MS;
      const lives = await Promise.all(held.map((closed) => Promise.race([closed, sleep(bound).then(() => 'still open')])));
      t.ok(acks >= 10 * 3, `the proxy answered the pings (${acks} acknowledged)`);
      t.same(lives.slice(0, 10).filter((l) => l === 'still open'), [], `quiet sessions closed within ${bound} ms: ${lives.slice(0, 10).join(', ')}`);
      t.same(lives.slice(10).filter((l) => l === 'still open'), [], `pinging sessions closed within ${bound} ms: ${lives.slice(10).join(', ')}`);
    });

    t.test('a quiet watch outlives every one of those timeouts', async (t) => {
      const namespace = `quiet-${http2}`;
      let received = '';
      if (http2) {
        const session = h2connect(stack.proxy.url, { ca: stack.servingCA });
        session.on('error', () => {});
        t.teardown(() => session.destroy());
        const watch = session.request({ ':path': `/api/v1/namespaces/${namespace}/pods?watch=true`, ...auth }, { endStream: true });
        const [head] = (await once(watch, 'response')) as [IncomingHttpHeaders];
        t.equal(head[':status'], 200);
        watch.on('data', (c: Buffer) => (received += c.toString()));
      } else {
        const res = await stack.fetch(`/api/v1/namespaces/${namespace}/pods?watch=true`, { headers: auth });
        t.equal(res.statusCode, 200);
        t.teardown(() => res.body.destroy());
        res.body.on('data', (c: Buffer) => (received += c.toString()));
      }
      await sleep(KEEP_ALIVE_TIMEOUT_MS + SLACK_MS);
      t.equal(stack.upstream.emitPodEvent(namespace, 'ADDED'), 1, 'the watch is still open upstream');
      for (let i = 0; i < 100 && !received.includes('\n'); i++) await sleep(10);
      t.match(received, /"type":"ADDED"/, 'and its event reaches the client');
    });
  });
}
