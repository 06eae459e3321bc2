// Attack class: upstream stream exhaustion (upstream.http2: auto). The upstream takes a
// bounded number of HTTP/2 streams per connection, and the proxy a bounded number of
// connections; a request waits for a free stream. An attacker who sends requests and
// leaves before they get one must not cost the proxy a stream each: when the dispatcher
// opened a stream for a request whose client was gone, it aborted it without counting the
// stream closed, so each such request took one slot for good and, at the limit, every
// later request of every user waited forever (found by a helper's attack on the dispatcher).
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createSecureServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { Agent, request } from 'undici';
import { devPki, startStack, untilReady } from '../helpers/stack.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('requests whose clients leave while they wait for an upstream stream do not use the streams up', async (t) => {
  const pki = await devPki();
  // An HTTP/2 upstream taking one stream per connection: a watch holds it while the attacker's requests wait.
  const upstream = createSecureServer({
    cert: await readFile(pki.upstreamCert),
    key: await readFile(pki.upstreamKey),
    ca: await readFile(pki.frontProxyCA),
    requestCert: true,
    settings: { maxConcurrentStreams: 1 },
  });
  let releaseWatch: () => void = () => {};
  upstream.on('stream', (stream: ServerHttp2Stream, headers) => {
    stream.on('error', () => {});
    const path = String(headers[':path']);
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    if (path.includes('watch=true')) {
      stream.write('{"type":"ADDED"}\n');
      releaseWatch = () => stream.end();
    } else stream.end(`{"path":${JSON.stringify(path)}}`);
  });
  upstream.on('session', (session) => session.on('error', () => {}));
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.teardown(() => upstream.close());

  const stack = await startStack(t, {
    configure: (c) => ({ ...c, upstream: { ...c.upstream!, url: `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`, http2: 'auto', connections: 1 } }),
  });
  await untilReady(stack.proxy);
  const auth = { authorization: `Bearer ${await stack.mint()}` };

  const watch = await stack.fetch('/api/v1/pods?watch=true', { headers: auth });
  t.equal(watch.statusCode, 200, 'a watch holds the one stream');
  watch.body.on('error', () => {}).resume();

  // The attacker: requests on connections of their own, each dropped while it waits. Logs
  // followed: long-running, so HTTP/2 streams (short requests go over HTTP/1.1).
  const follow = (ns: string) => `/api/v1/namespaces/${ns}/pods/p/log?follow=true`;
  const attackers = Array.from({ length: 5 }, () => new Agent({ connect: { ca: stack.servingCA } }));
  for (const [i, agent] of attackers.entries()) {
    const controller = new AbortController();
    void request(`${stack.proxy.url}${follow(`a${i}`)}`, { dispatcher: agent, headers: auth, signal: controller.signal }).catch(() => {});
    await sleep(50);
    controller.abort();
    await agent.destroy();
  }
  await sleep(200);
  releaseWatch(); // the stream is free: the dispatcher hands it to the abandoned requests in turn

  const answer = await Promise.race([
    stack.fetch(follow('victim'), { headers: auth }).then(async (r) => `${r.statusCode} ${await r.body.text()}`),
    sleep(5_000).then(() => 'still waiting after 5 s'),
  ]);
  t.equal(answer, `200 {"path":${JSON.stringify(follow('victim'))}}`, "another user's request is served");
});
