// listen.workers: several processes share the listener; the primary answers /readyz for
// all of them and sums their metrics; SIGTERM stops them all.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import { freePort, startStack, untilReady } from './helpers/stack.js';

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;

t.test('two workers behind one listener', async (t) => {
  const stack = await startStack(t);
  await untilReady(stack.proxy);
  const [port, healthPort] = [await freePort(), await freePort()];
  const configFile = join(t.testdir(), 'config.yaml');
  await writeFile(
    configFile,
    JSON.stringify({
      listen: {
        address: `127.0.0.1:${port}`,
        healthAddress: `127.0.0.1:${healthPort}`,
        tls: { certFile: stack.pki.servingCert, keyFile: stack.pki.servingKey },
        workers: 2,
      },
      upstream: { url: stack.upstream.url, caFile: stack.pki.upstreamCA, clientCertFile: stack.pki.frontProxyClientCert, clientKeyFile: stack.pki.frontProxyClientKey },
      authentication: {
        jwt: [{ issuer: { url: stack.issuer.url, audiences: ['kubernetes'], certificateAuthorityFile: stack.pki.servingCA }, claimMappings: { username: { claim: 'email', prefix: '' } } }],
      },
      audit: { path: join(t.testdir(), 'audit.log') },
    }),
  );
  const child = spawn(process.execPath, [CLI, '--config', configFile, '--log-level', 'warn'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  const health = (path: string) => request(`http://127.0.0.1:${healthPort}${path}`).then(async (r) => ({ status: r.statusCode, text: await r.body.text() }), () => ({ status: 0, text: '' }));

  let ready = 0;
  for (let i = 0; i < 150 && ready !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ready = (await health('/readyz')).status;
  }
  t.equal(ready, 200, 'ready once every worker is');

  const auth = { authorization: `Bearer ${await stack.mint()}` };
  const n = 40;
  for (let i = 0; i < n; i++) {
    // A new connection each time, so the connections spread over the workers.
    const agent = new Agent({ connect: { ca: stack.servingCA } });
    const res = await request(`https://127.0.0.1:${port}/api`, { dispatcher: agent, headers: auth });
    t.equal(res.statusCode, 200);
    await res.body.dump();
    await agent.close();
  }
  const metrics = (await health('/metrics')).text;
  const served = [...metrics.matchAll(/^kfp_requests_total\{code="200",auth_method="jwt",kind="short"\} (\d+)/gm)].map((m) => Number(m[1]));
  t.same(served, [n], 'the primary sums the workers\' counters');
  t.match(metrics, /kfp_process_cpu_user_seconds_total/);

  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  t.equal(code, 0, 'SIGTERM stops every worker and the primary');
});
