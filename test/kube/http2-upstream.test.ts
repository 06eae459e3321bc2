// upstream.http2 at its default (auto) against the real kube-apiserver, which speaks h2 (Go's
// server, 100 streams a connection) and here also sends GOAWAY on 2% of its
// HTTP/2 requests (--goaway-chance=0.02, its largest): lists, a watch that
// streams through while GOAWAYs come, 50 watches and 400 short watches over few connections (the
// proxy's sockets to the apiserver are counted from /proc, not taken from the
// proxy's word), kube's audit naming the same user as over HTTP/1.1, and exec,
// whose tunnel stays HTTP/1.1.
import { readdir, readFile, readlink } from 'node:fs/promises';
import t from 'tap';
import type { Config } from '../../src/config/schema.js';
import { namespaceForGroup, startKube, startProxiedStack, startTwinProxy, type ProxiedStack } from './helpers/kube-stack.js';

const ESTABLISHED = '01';

/** This process's established TCP connections to `port` (the proxy runs in-process). */
async function connectionsTo(port: number): Promise<number> {
  const inodes = new Set<string>();
  for (const fd of await readdir('/proc/self/fd')) {
    const link = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode) inodes.add(inode);
  }
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (await readFile(table, 'utf8').catch(() => '')).split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [remote, state, inode] = [fields[2], fields[3], fields[9]];
      if (remote && state === ESTABLISHED && inode && inodes.has(inode) && parseInt(remote.split(':')[1], 16) === port) count++;
    }
  }
  return count;
}

/** Runs `total` requests, `concurrency` at a time; returns their statuses and the most connections to `port` seen meanwhile. */
async function burst(send: () => Promise<number>, total: number, concurrency: number, port: number) {
  let peak = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await connectionsTo(port));
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) statuses.push(await send());
    }),
  );
  running = false;
  await sampler;
  return { statuses, peak };
}

const cluster = await startKube(t, { extraArgs: ['--goaway-chance=0.02'] });
if (cluster) {
  const port = Number(new URL(cluster.url).port);
  // No upstream.http2 in its configuration: auto is the default, and this proves the default.
  const h2 = await startProxiedStack(t, cluster);
  const h1 = await startTwinProxy(t, h2, (config: Config, auditFile) => ({ ...config, upstream: { ...config.upstream!, http2: 'off' }, audit: { ...config.audit, path: auditFile } }));
  const ns = 'kfp-h2';
  const setup = await namespaceForGroup(cluster, ns, {
    name: 'reader',
    binding: 'team',
    group: 'oidc:Zoë Team',
    rules: [
      { apiGroups: [''], resources: ['pods', 'configmaps'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['pods/exec'], verbs: ['create', 'get'] },
    ],
  });
  // Asserted here, after the last await of the setup: an assertion at the top level
  // followed by an await lets tap end the root test before the subtests are queued.
  const token = await h2.mint({ email: 'zoë@example.com', groups: ['Zoë Team', 'dev'] });
  t.same(setup, [201, 201, 201, 201], 'namespace, service account and RBAC created');
  const auth = { authorization: `Bearer ${token}` };
  const get = (stack: ProxiedStack, path: string) => stack.fetch(path, { headers: auth }).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }));

  t.test('kube sees the same user over HTTP/2 (a watch) as over HTTP/1.1 (short requests)', async (t) => {
    const [overH2, overH1] = await Promise.all([h2, h1].map(async (s) => s.kubectl(await s.kubeconfig(token), ['auth', 'whoami', '-o', 'json'])));
    t.equal(overH2.code, 0, overH2.stderr);
    const user = (JSON.parse(overH2.stdout) as { status: { userInfo: unknown } }).status.userInfo;
    t.match(user, { username: 'zoë@example.com', groups: ['oidc:Zoë Team', 'oidc:dev', 'system:authenticated'] });
    t.same(user, (JSON.parse(overH1.stdout) as { status: { userInfo: unknown } }).status.userInfo, 'identical to HTTP/1.1');
    const listed = await get(h2, `/api/v1/namespaces/${ns}/pods`);
    t.equal(listed.status, 200, 'RBAC by the UTF-8 group');
    const event = await cluster.auditEvent((e) => e.requestURI === `/api/v1/namespaces/${ns}/pods` && e.verb === 'list' && e.stage === 'ResponseComplete');
    t.same(event.user.username, 'zoë@example.com', "kube's audit names the person");
    t.same(event.user.groups, ['oidc:Zoë Team', 'oidc:dev', 'system:authenticated']);
    const watched = await get(h2, `/api/v1/namespaces/${ns}/pods?watch=true&timeoutSeconds=1`);
    t.equal(watched.status, 200, 'a watch, over HTTP/2');
    const watchEvent = await cluster.auditEvent((e) => e.requestURI.startsWith(`/api/v1/namespaces/${ns}/pods?`) && e.verb === 'watch' && e.stage === 'ResponseComplete');
    t.same(watchEvent.user, event.user, 'kube names the same user for it');
    t.ok(h2.logs().some((l) => l.msg === 'upstream HTTP/2 connection opened'), 'over an HTTP/2 connection');
  });

  t.test('a watch streams through while 50 more watches and 400 short ones go over few connections (and kube sends GOAWAYs)', async (t) => {
    const res = await h2.fetch(`/api/v1/namespaces/${ns}/configmaps?watch=true`, { headers: auth });
    t.equal(res.statusCode, 200);
    let text = '';
    res.body.on('data', (c: Buffer) => (text += c.toString()));
    const names = () => [...text.matchAll(/"name":"(cm-\d+)"/g)].map((m) => m[1]);
    const create = (name: string) => cluster.admin(`/api/v1/namespaces/${ns}/configmaps`, { method: 'POST', body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } } });
    const until = async (name: string) => {
      const deadline = Date.now() + 5_000;
      while (!names().includes(name) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      return names().includes(name);
    };
    t.equal((await create('cm-1')).status, 201);
    t.ok(await until('cm-1'), 'the first event came through');

    // 50 watches held open (as informers hold theirs) while 400 watches of a second run, 50 at
    // a time: long-running, so HTTP/2 streams (short requests, lists, go over HTTP/1.1).
    const busy = async (stack: ProxiedStack) => {
      const watches = await Promise.all(
        Array.from({ length: 50 }, () => stack.fetch(`/api/v1/namespaces/${ns}/pods?watch=true&timeoutSeconds=30`, { headers: auth })),
      );
      const result = await burst(() => get(stack, `/api/v1/namespaces/${ns}/pods?watch=true&timeoutSeconds=1`).then((r) => r.status), 400, 50, port);
      for (const w of watches) w.body.destroy();
      return { ...result, watchStatuses: new Set(watches.map((w) => w.statusCode)) };
    };
    const overH2 = await busy(h2);
    t.same(overH2.watchStatuses, new Set([200]));
    t.same(new Set(overH2.statuses), new Set([200]), 'every request answered 200 (GOAWAYs included)');
    t.equal(overH2.statuses.length, 400);
    const overH1 = await busy(h1);
    t.same(new Set(overH1.statuses), new Set([200]));
    t.comment(`connections to kube-apiserver at the peak (100 watches open): ${overH2.peak} with http2: auto, ${overH1.peak} with off (the admin client and the other proxy's idle ones included)`);
    t.ok(overH2.peak <= 12, `few connections over HTTP/2 (${overH2.peak})`);
    t.ok(overH1.peak >= 50, `where HTTP/1.1 holds one per watch (${overH1.peak})`);

    t.equal((await create('cm-2')).status, 201);
    t.ok(await until('cm-2'), 'the watch still streams after the burst and its GOAWAYs');
    const said = (message: string) => h2.logs().filter((l) => l.msg === message).length;
    const goaways = said('upstream HTTP/2 GOAWAY: no new streams on this connection');
    t.comment(`the proxy's debug log: ${said('upstream HTTP/2 connection opened')} HTTP/2 connections opened, ${goaways} GOAWAYs, ${said('the upstream refused an HTTP/2 stream unprocessed (GOAWAY); sent again on another connection')} requests sent again`);
    t.ok(goaways > 0, 'kube-apiserver did send GOAWAY (2% of 400 requests: none at all has odds of 3 in 10,000)');
    res.body.destroy();
  });

  t.test('exec still works: its upgrade reaches kube-apiserver as the user', async (t) => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'exec-target' }, spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'registry.example/none:1' }] } };
    t.equal((await cluster.admin(`/api/v1/namespaces/${ns}/pods`, { method: 'POST', body: pod })).status, 201);
    const result = await h2.kubectl(await h2.kubeconfig(token), ['exec', '-n', ns, 'exec-target', '--', 'true']);
    t.not(result.code, 0);
    // Past RBAC: kube-apiserver looks for the pod's node, which does not exist here.
    t.match(result.stderr, /does not have a host assigned/, 'the apiserver answered past authorization');
    const events = (await cluster.auditEvents()).filter((e) => e.requestURI.includes('/pods/exec-target/exec'));
    t.ok(events.length > 0, 'the exec requests reached kube-apiserver');
    t.ok(events.every((e) => e.user.username === 'zoë@example.com'), 'as the proxied user');
  });
}
