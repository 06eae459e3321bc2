// Long-running requests through the proxy against the real apiserver: each
// event of kubectl get --watch reaches kubectl as it happens, and kubectl exec's
// upgrade reaches kube-apiserver with the user's identity (no kubelet runs, so
// the apiserver's own answer is what comes back through the tunnel).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { namespaceForGroup, startKube, startProxiedStack } from './helpers/kube-stack.js';

const cluster = await startKube(t);
if (cluster) {
  const stack = await startProxiedStack(t, cluster);
  const ns = 'kfp-watch';
  const setup = await namespaceForGroup(cluster, ns, {
    name: 'watcher',
    binding: 'infrastructure-watcher',
    group: 'oidc:infrastructure',
    rules: [{ apiGroups: [''], resources: ['pods', 'configmaps'], verbs: ['get', 'list', 'watch'] }],
  });
  t.same(setup, [201, 201, 201, 201], 'namespace, service account and RBAC created');

  const pod = (name: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'registry.example/none:1' }] },
  });

  const seen = new Set<string>();
  /** Starts `kubectl get <resource> --watch-only -o name` through the proxy; lines arrive through next(). */
  const watch = async (resource: string) => {
    const kubeconfig = await stack.kubeconfig(await stack.login());
    const cache = await mkdtemp(join(tmpdir(), 'kfp-watch-'));
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, 'get', resource, '-n', ns, '--watch-only', '-o', 'name'], {
      env: { ...process.env, KUBECACHEDIR: cache },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const lines: string[] = [];
    const waiters: Array<() => void> = [];
    let partial = '';
    child.stdout.on('data', (c: Buffer) => {
      partial += c.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
      waiters.splice(0).forEach((w) => w());
    });
    const next = async (ms = 5_000): Promise<string> => {
      const deadline = Date.now() + ms;
      while (lines.length === 0) {
        if (Date.now() > deadline) throw new Error(`no watch event within ${ms} ms; kubectl said: ${stderr}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
      return lines.shift()!;
    };
    // The watch is open once kube-apiserver has logged its response head (stage ResponseStarted).
    await cluster.auditEvent((e) => e.verb === 'watch' && e.stage === 'ResponseStarted' && e.requestURI.includes(`/namespaces/${ns}/${resource}`) && !seen.has(e.auditID), 15_000).then((e) => seen.add(e.auditID));
    const stop = async () => {
      child.kill('SIGTERM');
      await rm(cache, { recursive: true, force: true });
    };
    return { next, stop, stderr: () => stderr };
  };
  t.test('kubectl get pods --watch sees each change as it happens', async (t) => {
    const w = await watch('pods');
    t.teardown(w.stop);
    const timed = async (change: () => Promise<{ status: number }>, expected: string) => {
      const started = Date.now();
      const res = await change();
      t.ok(res.status < 300, `${expected}: change accepted (${res.status})`);
      t.equal(await w.next(), expected);
      return Date.now() - started;
    };
    const delays = [
      await timed(() => cluster.admin(`/api/v1/namespaces/${ns}/pods`, { method: 'POST', body: pod('p1') }), 'pod/p1'),
      await timed(
        () => cluster.admin(`/api/v1/namespaces/${ns}/pods/p1`, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: { metadata: { labels: { step: 'two' } } } }),
        'pod/p1',
      ),
      await timed(() => cluster.admin(`/api/v1/namespaces/${ns}/pods`, { method: 'POST', body: pod('p2') }), 'pod/p2'),
      await timed(() => cluster.admin(`/api/v1/namespaces/${ns}/pods/p2?gracePeriodSeconds=0`, { method: 'DELETE' }), 'pod/p2'),
    ];
    t.comment(`event delays through the proxy: ${delays.join(', ')} ms`);
    t.ok(delays.every((d) => d < 3_000), 'every event arrived within 3 s of its change');
  });

  t.test('configmaps too, and the proxy audits the watch as a watch', async (t) => {
    const w = await watch('configmaps');
    for (const name of ['c1', 'c2', 'c3']) {
      const res = await cluster.admin(`/api/v1/namespaces/${ns}/configmaps`, { method: 'POST', body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: name } } });
      t.equal(res.status, 201);
      t.equal(await w.next(), `configmap/${name}`);
    }
    await w.stop();
    const deadline = Date.now() + 5_000;
    let line;
    while (!(line = (await stack.proxyAudit()).find((l) => l.kind === 'watch' && l.target.includes(`/namespaces/${ns}/configmaps`))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    t.ok(line, 'the proxy wrote an audit line for the watch when it closed');
    t.equal(line?.user, 'demo@example.com');
  });

  t.test('kubectl exec: the upgrade reaches kube-apiserver as the user, and its answer comes back', async (t) => {
    const kubeconfig = await stack.kubeconfig(await stack.login());
    const created = await cluster.admin(`/api/v1/namespaces/${ns}/pods`, { method: 'POST', body: pod('exec-target') });
    t.equal(created.status, 201);
    const denied = await stack.kubectl(kubeconfig, ['exec', '-n', ns, 'exec-target', '--', 'true']);
    t.not(denied.code, 0);
    t.match(denied.stderr, /pods "exec-target" is forbidden: User "demo@example.com" cannot (create|get) resource "pods\/exec"/, 'RBAC judged the proxied user');

    const granted = await cluster.admin(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles/watcher`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: [{ op: 'add', path: '/rules/-', value: { apiGroups: [''], resources: ['pods/exec'], verbs: ['create', 'get'] } }],
    });
    t.equal(granted.status, 200);
    const noNode = await stack.kubectl(kubeconfig, ['exec', '-n', ns, 'exec-target', '--', 'true']);
    t.not(noNode.code, 0);
    // Past RBAC: kube-apiserver looks for the pod's node, which does not exist here.
    t.match(noNode.stderr, /does not have a host assigned/, 'the apiserver answered past authorization');
    const events = (await cluster.auditEvents()).filter((e) => e.requestURI.includes('/pods/exec-target/exec'));
    t.ok(events.length > 0, 'the exec requests reached kube-apiserver');
    t.ok(events.every((e) => e.user.username === 'demo@example.com'), 'as the proxied user');
    t.comment(`exec attempts seen by kube-apiserver: ${events.map((e) => `${e.stage} ${e.responseStatus?.code}`).join(', ')}`);
  });
}
