// Real kubectl, from this machine, through the proxy.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startStack, untilReady } from '../helpers/stack.js';

const run = promisify(execFile);

const kubectl = await run('kubectl', ['version', '--client', '-o', 'json']).catch(() => undefined);
if (!kubectl) {
  // CI refuses to run without kubectl (.ci/run checks); a developer without it is told loudly.
  t.fail('kubectl is not on PATH: install it to run the kubectl tests');
} else {
  t.test('kubectl auth whoami shows the mapped user and groups, over HTTP/2', async (t) => {
    const dir = t.testdir();
    const auditFile = join(dir, 'audit.log');
    const stack = await startStack(t, { configure: (c) => ({ ...c, audit: { path: auditFile, format: 'combined' } }) });
    await untilReady(stack.proxy);
    const token = await stack.login();
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: stack.proxy.url, 'certificate-authority': stack.pki.servingCA } }],
        users: [{ name: 'u', user: { token } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    const { stdout } = await run('kubectl', ['--kubeconfig', kubeconfig, 'auth', 'whoami', '-o', 'json']);
    const review = JSON.parse(stdout);
    t.same(review.status.userInfo, { username: 'demo@example.com', uid: 'demo', groups: ['oidc:developers', 'oidc:infrastructure'] });

    const refused = await run('kubectl', ['--kubeconfig', kubeconfig, '--token', 'not-a-jwt', 'auth', 'whoami']).catch((e) => e);
    t.match(refused.stderr, /Unauthorized|must be logged in/, 'a bad token is refused');

    await stack.proxy.close(); // flushes the audit log
    const whoami = (await readFile(auditFile, 'utf8')).split('\n').find((l) => l.includes('selfsubjectreviews'));
    t.match(whoami, /"POST \/apis\/authentication\.k8s\.io\/v1\/selfsubjectreviews HTTP\/2\.0" 201 /, 'kubectl chose h2 when offered');
  });
}
