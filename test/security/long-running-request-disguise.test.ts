// Attack class: a long-running request disguised as a short one. kube-apiserver reads
// ?watch=yes (any value but 0 or false) as a watch and every /log as long-running; the proxy
// read only true and 1, and only ?follow=true. So a watch spelled watch=yes was, to the proxy,
// a short request: it went to the HTTP/1.1 pool and held one of its connections for as long as
// the attacker liked. With upstream.connections set, a few of them took the whole pool and
// every other user's short request queued in undici's pool, where no timeout runs until a
// request is written: they hung (found by a helper's attack on the HTTP/2-upstream split).
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createSecureServer } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { devPki, startStack, untilReady, type Stack } from '../helpers/stack.js';

type Test = { teardown(fn: () => unknown): void };
type Auth = { authorization: string };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** kube-apiserver's shape here: h2 by ALPN and HTTP/1.1 too; a watch (as kube reads the query) is held open. */
async function startUpstream(t: Test, options: { http1Only?: boolean } = {}) {
  const pki = await devPki();
  const seen: string[] = [];
  const tls = { cert: await readFile(pki.upstreamCert), key: await readFile(pki.upstreamKey), ca: await readFile(pki.frontProxyCA), requestCert: true };
  const handle = (req: { url?: string }, res: { writeHead(status: number, headers: Record<string, string>): unknown; write(chunk: string): unknown; end(chunk: string): unknown; on(event: 'close', fn: () => void): unknown }) => {
    const url = req.url ?? '';
    seen.push(url);
    const watch = new URL(url, 'https://x').searchParams.get('watch');
    if (url.includes('slow')) return void setTimeout(() => res.end(`{"path":${JSON.stringify(url)}}`), 600);
    res.writeHead(200, { 'content-type': 'application/json' });
    if (watch !== null && watch !== '0' && watch.toLowerCase() !== 'false') {
      // An event every half second: a watch the attacker keeps busy is never cut for silence.
      res.write('{"type":"ADDED"}\n');
      const events = setInterval(() => res.write('{"type":"MODIFIED"}\n'), 500);
      return void res.on('close', () => clearInterval(events));
    }
    res.end(`{"path":${JSON.stringify(url)}}`);
  };
  const server = options.http1Only ? createHttpsServer(tls, handle) : createSecureServer({ ...tls, allowHTTP1: true }, handle);
  server.on('session', (s: { on(event: 'error', fn: () => void): void }) => s.on('error', () => {}));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => void server.close());
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function proxy(t: Test, url: string): Promise<{ stack: Stack; auth: Auth }> {
  const stack = await startStack(t, { configure: (c) => ({ ...c, upstream: { ...c.upstream!, url, connections: 1, responseTimeout: '2s' } }) });
  await untilReady(stack.proxy);
  return { stack, auth: { authorization: `Bearer ${await stack.mint()}` } };
}

/** A short request's outcome within `ms`: "status body", or that it still waits. */
const answer = (stack: Stack, auth: Auth, path: string, ms: number) =>
  Promise.race([stack.fetch(path, { headers: auth }).then(async (r) => `${r.statusCode} ${await r.body.text()}`), sleep(ms).then(() => 'still waiting')]);

t.test('watches spelled as kube allows do not take the connections short requests need', async (t) => {
  const { stack, auth } = await proxy(t, (await startUpstream(t)).url);
  const held = [];
  for (const spelling of ['yes', 'TRUE', '']) {
    const w = await stack.fetch(`/api/v1/pods?watch=${spelling}`, { headers: auth });
    t.equal(w.statusCode, 200, `watch=${spelling} is served, as a watch`);
    w.body.on('error', () => {}).resume();
    held.push(w);
  }
  t.equal(await answer(stack, auth, '/api/v1/namespaces/victim', 5_000), '200 {"path":"/api/v1/namespaces/victim"}', "another user's short request is served");
  for (const w of held) w.body.destroy();
});

t.test('a short request queued behind a full pool gets 504 at upstream.responseTimeout, never sent', async (t) => {
  // An upstream on HTTP/1.1 only: every watch holds a connection, and with connections: 1 the
  // one there is. The queued request used to wait for the watch to end.
  const upstream = await startUpstream(t, { http1Only: true });
  const { stack, auth } = await proxy(t, upstream.url);
  const w = await stack.fetch('/api/v1/pods?watch=true', { headers: auth });
  w.body.on('error', () => {}).resume();
  const outcome = await answer(stack, auth, '/api/v1/namespaces/queued', 6_000);
  t.match(outcome, /^504 /, `answered 504 (${outcome.slice(0, 40)})`);
  w.body.destroy(); // the connection frees: undici now starts the queued request, and it is dropped
  await sleep(500);
  t.notOk(upstream.seen.includes('/api/v1/namespaces/queued'), 'the request answered 504 never reached the upstream');
});

t.test('a request that leaves the queue late gets a whole responseTimeout once sent', async (t) => {
  // The queue's deadline went on running after the request was written: a DELETE sent with
  // 300 ms left ran upstream (600 ms) and was answered 504, inviting the client to send it again.
  const upstream = await startUpstream(t, { http1Only: true });
  const { stack, auth } = await proxy(t, upstream.url);
  const w = await stack.fetch('/api/v1/pods?watch=true', { headers: auth });
  w.body.on('error', () => {}).resume();
  const deleted = stack.fetch('/api/v1/namespaces/a/configmaps/slow', { method: 'DELETE', headers: auth }).then(async (r) => `${r.statusCode} ${await r.body.text()}`);
  await sleep(1_700); // of the 2 s
  w.body.destroy(); // the connection frees; the DELETE is written with 300 ms of the queue's deadline left
  t.equal(await deleted, '200 {"path":"/api/v1/namespaces/a/configmaps/slow"}');
  t.equal(upstream.seen.filter((p) => p.includes('slow')).length, 1, 'sent once');
});
