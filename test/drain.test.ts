// SIGTERM on the real binary: stop accepting, let a short request in flight finish,
// then close the open watch, flush the audit log and exit 0.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { request } from 'undici';
import { freePort, startStack, untilReady } from './helpers/stack.js';

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;

t.test('SIGTERM drains', async (t) => {
  // The stack's issuer and upstream; the proxy under test is a separate process.
  const stack = await startStack(t);
  await untilReady(stack.proxy);
  const dir = t.testdir();
  const auditFile = join(dir, 'audit.log');
  const configFile = join(dir, 'config.yaml');
  const [port, healthPort] = [await freePort(), await freePort()];
  await writeFile(
    configFile,
    JSON.stringify({
      listen: {
        address: `127.0.0.1:${port}`,
        healthAddress: `127.0.0.1:${healthPort}`,
        tls: { certFile: stack.pki.servingCert, keyFile: stack.pki.servingKey },
        shutdownGracePeriod: '10s',
      },
      upstream: {
        url: stack.upstream.url,
        caFile: stack.pki.upstreamCA,
        clientCertFile: stack.pki.frontProxyClientCert,
        clientKeyFile: stack.pki.frontProxyClientKey,
      },
      authentication: {
        jwt: [
          {
            issuer: { url: stack.issuer.url, audiences: ['kubernetes'], certificateAuthorityFile: stack.pki.servingCA },
            claimMappings: { username: { claim: 'email', prefix: '' } },
          },
        ],
      },
      audit: { path: auditFile },
    }),
  );
  const child = spawn(process.execPath, [CLI, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const base = `https://127.0.0.1:${port}`;
  const auth = { authorization: `Bearer ${await stack.mint()}` };

  // Ready when the primary's /readyz says every worker has discovered the issuer. Polling /api
  // was not enough: with several workers (the default follows the machine's CPUs) one worker
  // could answer 200 while the next, still discovering, answered the watch 401 (CI, once).
  let ready = 0;
  for (let i = 0; i < 150 && ready !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ready = await request(`http://127.0.0.1:${healthPort}/readyz`).then(
      (r) => (r.body.dump(), r.statusCode),
      () => 0,
    );
  }
  t.equal(ready, 200, 'the proxy process is ready');
  const status = await request(`${base}/api`, { dispatcher: stack.client, headers: auth }).then((r) => (r.body.dump(), r.statusCode));
  t.equal(status, 200, 'the proxy process serves');

  const watch = await request(`${base}/api/v1/namespaces/default/pods?watch=1`, { dispatcher: stack.client, headers: auth });
  t.equal(watch.statusCode, 200);
  const watchEnded = new Promise<void>((resolve) => {
    watch.body.on('error', () => resolve());
    watch.body.on('end', () => resolve());
    watch.body.resume();
  });

  // A short request whose body is still arriving when SIGTERM comes.
  const body = new PassThrough();
  const upload = request(`${base}/debug/echo`, { dispatcher: stack.client, method: 'POST', headers: auth, body });
  body.write('first half,');
  await new Promise((r) => setTimeout(r, 200));

  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  const refused = await request(`${base}/api`, { dispatcher: new (await import('undici')).Agent({ connect: { ca: stack.servingCA } }), headers: auth }).then(
    () => false,
    () => true,
  );
  t.ok(refused, 'no new connections after SIGTERM');

  body.end('second half');
  const res = await upload;
  t.equal(res.statusCode, 200);
  t.equal(await res.body.text(), 'first half,second half', 'the request in flight finished');

  await watchEnded;
  t.pass('the watch was closed after the short requests drained');
  const [code] = await once(child, 'exit');
  t.equal(code, 0, 'exit 0');
  t.match(log, /kube-front-proxy stopped/);
  const audit = await readFile(auditFile, 'utf8');
  t.match(audit, /"POST \/debug\/echo HTTP\/1\.1" 200 /, 'the drained request is in the audit log');
  t.match(audit, /kind=watch/, 'the closed watch is in the audit log');
});

t.test('a stop writes the audit line of every watch it closes, before the audit log closes', async (t) => {
  // The close events of the watches it cuts can come after the listener has closed;
  // an audit log closed first lost those lines (and SonicBoom threw on the late write).
  const auditFile = join(t.testdir(), 'audit.log');
  const stack = await startStack(t, { configure: (c) => ({ ...c, audit: { path: auditFile, format: 'combined' } }) });
  await untilReady(stack.proxy);
  const auth = { authorization: `Bearer ${await stack.mint()}` };
  const watches = await Promise.all(['a', 'b', 'c'].map((ns) => stack.fetch(`/api/v1/namespaces/${ns}/pods?watch=1`, { headers: auth })));
  for (const w of watches) w.body.on('error', () => {}).resume();
  await stack.proxy.close();
  const audit = await readFile(auditFile, 'utf8');
  for (const ns of ['a', 'b', 'c']) t.match(audit, new RegExp(`GET /api/v1/namespaces/${ns}/pods\\?watch=1 HTTP/1\\.1" 200 .* kind=watch`), `watch in ${ns} logged`);
});
