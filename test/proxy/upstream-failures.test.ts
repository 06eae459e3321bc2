// When the upstream is down, refuses, misbehaves or is slow, clients get the right Status,
// and long-running requests are not cut by the timeouts meant for short ones.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import t from 'tap';
import { devPki, freePort, startStack, untilReady } from '../helpers/stack.js';


t.test('upstream refuses connections: 503', async (t) => {
  const port = await freePort();
  const stack = await startStack(t, { configure: (c) => ({ ...c, upstream: { ...c.upstream, url: `https://127.0.0.1:${port}` } }) });
  await untilReady(stack.proxy);
  const res = await stack.fetch('/api', { headers: { authorization: `Bearer ${await stack.mint()}` } });
  t.equal(res.statusCode, 503);
  t.match(await res.body.json(), { kind: 'Status', reason: 'ServiceUnavailable', code: 503 });
});

t.test('upstream with a certificate we do not trust: 502', async (t) => {
  const stack = await startStack(t, {
    // The serving CA did not sign the upstream's certificate.
    configure: (c) => ({ ...c, upstream: { ...c.upstream, caFile: c.listen.tls.certFile } }),
  });
  await untilReady(stack.proxy);
  const res = await stack.fetch('/api', { headers: { authorization: `Bearer ${await stack.mint()}` } });
  t.equal(res.statusCode, 502);
  t.match(await res.body.json(), { kind: 'Status', code: 502 });
});

t.test('slow upstream', async (t) => {
  // A test double: a TLS server that accepts and never answers. The real upstream
  // cannot be made to hang on demand.
  const pki = await devPki();
  const held = new Set<import('node:tls').TLSSocket>();
  const silent = createTlsServer({ cert: await readFile(pki.upstreamCert), key: await readFile(pki.upstreamKey) }, (s) => held.add(s));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.teardown(() => {
    for (const s of held) s.destroy();
    silent.close();
  });
  const silentPort = (silent.address() as AddressInfo).port;

  t.test('a short request that gets no answer: 504', async (t) => {
    const stack = await startStack(t, {
      configure: (c) => ({ ...c, upstream: { ...c.upstream, url: `https://127.0.0.1:${silentPort}`, responseTimeout: '300ms' } }),
    });
    await untilReady(stack.proxy);
    const res = await stack.fetch('/api', { headers: { authorization: `Bearer ${await stack.mint()}` } });
    t.equal(res.statusCode, 504);
    t.match(await res.body.json(), { kind: 'Status', reason: 'Timeout', code: 504 });
  });

  t.test('a quiet watch outlives the short-request timeout', async (t) => {
    const stack = await startStack(t, { configure: (c) => ({ ...c, upstream: { ...c.upstream, responseTimeout: '300ms' } }) });
    await untilReady(stack.proxy);
    const watch = await stack.fetch('/api/v1/namespaces/default/pods?watch=true', {
      headers: { authorization: `Bearer ${await stack.mint()}` },
    });
    t.equal(watch.statusCode, 200);
    await new Promise((r) => setTimeout(r, 1000)); // > 3 × responseTimeout with no data
    stack.upstream.emitPodEvent('default', 'ADDED');
    const [chunk] = (await once(watch.body, 'data')) as [Buffer];
    t.match(JSON.parse(chunk.toString().split('\n')[0]), { type: 'ADDED' });
    watch.body.destroy();
  });
});
