// The default worker count comes from the container: the cgroup CPU quota, then what the
// memory limit holds, else the cores; listen.workers wins. Where this machine lets us make
// a real cgroup with a CPU quota, the real proxy runs under it and we count its workers.
// The other cases (cgroup v2 on a v1 host, memory limits, files the kernel never writes)
// cannot be made real without moving the test out of the cgroups its runner put it in,
// so they read a directory shaped like `/` (proc/self/cgroup, proc/self/mountinfo,
// sys/fs/cgroup) through the same code. Last, deploy/kubernetes: every overlay's limits
// give a worker count that does not depend on the node, and hold what they promise.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { cp, readdir, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { readContainerLimits } from '../src/observe/cgroup.js';
import { IDLE_SHARE_OF_MEMORY, PRIMARY_BASELINE_BYTES, WORKER_BASELINE_BYTES, planWorkers } from '../src/workers.js';
import { freePort, startStack, type Stack } from './helpers/stack.js';

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const MiB = 1024 * 1024;

/** A directory shaped like `/`: each key a path under it, each value the file's text (an object: a directory). */
type Tree = { [path: string]: string | Tree };
function fakeRoot(dir: string, tree: Tree): string {
  for (const [path, content] of Object.entries(tree)) {
    const full = join(dir, path);
    if (typeof content === 'string') {
      mkdirSync(join(full, '..'), { recursive: true });
      writeFileSync(full, content);
    } else {
      mkdirSync(full, { recursive: true });
      fakeRoot(full, content);
    }
  }
  return dir;
}

/** cgroup v2 as a container sees it (cgroupns): its own cgroup is the mount's root. */
const v2 = (files: Tree, path = '/'): Tree => ({
  'proc/self/cgroup': `0::${path}\n`,
  'proc/self/mountinfo': [
    '22 1 0:21 / / rw,relatime - overlay overlay rw',
    '30 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot',
  ].join('\n'),
  'sys/fs/cgroup': files,
});

/** cgroup v1 as Docker shows it: /proc/self/cgroup names the host's path, the mounts' root is that path. */
const V1_PATH = '/docker/4f2c1e';
const v1 = (cpu: Tree, memory: Tree): Tree => ({
  'proc/self/cgroup': ['12:memory:' + V1_PATH, '4:cpu,cpuacct:' + V1_PATH, '1:name=systemd:' + V1_PATH, '0::/'].join('\n'),
  'proc/self/mountinfo': [
    '600 500 0:50 / / rw,relatime - overlay overlay rw',
    `610 600 0:52 ${V1_PATH} /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct`,
    `611 600 0:53 ${V1_PATH} /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory`,
    `612 600 0:54 ${V1_PATH} /sys/fs/cgroup/systemd ro,nosuid - cgroup cgroup rw,xattr,name=systemd`,
  ].join('\n'),
  'sys/fs/cgroup/cpu,cpuacct': cpu,
  'sys/fs/cgroup/memory': memory,
});

const v1Cpu = (quota: number, period = 100000): Tree => ({ 'cpu.cfs_quota_us': `${quota}\n`, 'cpu.cfs_period_us': `${period}\n` });
/** What v1 writes for "no limit" with 4 KiB pages. */
const V1_UNLIMITED = '9223372036854771712\n';
/** Room for the primary and exactly two workers, not three, with the share left for traffic. */
const HOLDS_TWO = Math.round((PRIMARY_BASELINE_BYTES + 2.5 * WORKER_BASELINE_BYTES) / IDLE_SHARE_OF_MEMORY);

const NOT_SET = { memorySessions: false };
const CORES = 8;

t.test('limits read from a cgroup filesystem, and the count they give', async (t) => {
  const cases: Array<{ name: string; tree: Tree; settings?: { workers?: number; memorySessions: boolean }; cpus?: number; memory?: number; count: number; source: string; problem?: RegExp }> = [
    { name: 'v2, no limits', tree: v2({ 'cpu.max': 'max 100000\n', 'memory.max': 'max\n' }), count: CORES, source: 'cores' },
    { name: 'v2, quota 1.5 cores', tree: v2({ 'cpu.max': '150000 100000\n', 'memory.max': 'max\n' }), cpus: 1.5, count: 2, source: 'cgroup cpu quota' },
    { name: 'v2, quota below one core', tree: v2({ 'cpu.max': '20000 100000\n' }), cpus: 0.2, count: 1, source: 'cgroup cpu quota' },
    { name: 'v2, quota above the cores', tree: v2({ 'cpu.max': '1600000 100000\n' }), cpus: 16, count: CORES, source: 'cores' },
    { name: 'v2, a memory limit that holds two workers', tree: v2({ 'cpu.max': 'max 100000\n', 'memory.max': `${HOLDS_TWO}\n` }), memory: HOLDS_TWO, count: 2, source: 'memory limit' },
    { name: 'v2, a memory limit below one worker and the primary: one process alone', tree: v2({ 'memory.max': `${64 * MiB}\n` }), memory: 64 * MiB, count: 1, source: 'memory limit' },
    {
      name: 'v2, a parent\'s quota binds its child (a pod\'s cgroup above the container\'s)',
      tree: v2({ 'cpu.max': '100000 100000\n', pod: { 'cpu.max': 'max 100000\n', 'memory.max': 'max\n' } }, '/pod'),
      cpus: 1,
      count: 1,
      source: 'cgroup cpu quota',
    },
    { name: 'v2, the root cgroup has no cpu.max or memory.max', tree: v2({ 'cgroup.controllers': 'cpu memory\n' }), count: CORES, source: 'cores' },
    { name: 'v1, no limits', tree: v1(v1Cpu(-1), { 'memory.limit_in_bytes': V1_UNLIMITED }), count: CORES, source: 'cores' },
    { name: 'v1, quota 1.5 cores', tree: v1(v1Cpu(75000, 50000), { 'memory.limit_in_bytes': V1_UNLIMITED }), cpus: 1.5, count: 2, source: 'cgroup cpu quota' },
    { name: 'v1, quota below one core', tree: v1(v1Cpu(50000), { 'memory.limit_in_bytes': V1_UNLIMITED }), cpus: 0.5, count: 1, source: 'cgroup cpu quota' },
    { name: 'v1, a memory limit that holds two workers', tree: v1(v1Cpu(-1), { 'memory.limit_in_bytes': `${HOLDS_TWO}\n` }), memory: HOLDS_TWO, count: 2, source: 'memory limit' },
    {
      name: 'v1, the quota and then the memory limit: the smaller wins',
      tree: v1(v1Cpu(400000), { 'memory.limit_in_bytes': `${HOLDS_TWO}\n` }),
      cpus: 4,
      memory: HOLDS_TWO,
      count: 2,
      source: 'memory limit',
    },
    {
      name: 'unreadable cpu.max (a directory): the cores, and why',
      tree: v2({ 'cpu.max': { x: '' }, 'memory.max': 'max\n' }),
      count: CORES,
      source: 'cores',
      problem: /cpu: .*cpu\.max: EISDIR/,
    },
    {
      name: 'malformed v1 quota: the cores, and why',
      tree: v1({ 'cpu.cfs_quota_us': 'lots\n', 'cpu.cfs_period_us': '100000\n' }, { 'memory.limit_in_bytes': V1_UNLIMITED }),
      count: CORES,
      source: 'cores',
      problem: /cpu: .*cpu\.cfs_quota_us: not a number/,
    },
    {
      name: 'malformed memory.max: the quota still counts, the memory limit is ignored',
      tree: v2({ 'cpu.max': '150000 100000\n', 'memory.max': '1G\n' }),
      cpus: 1.5,
      count: 2,
      source: 'cgroup cpu quota',
      problem: /memory: .*memory\.max: not a number/,
    },
    {
      name: 'a cgroup outside every mount (moved since): unknown, the cores',
      tree: { ...v1({}, {}), 'proc/self/cgroup': '4:cpu,cpuacct:/elsewhere\n12:memory:/elsewhere\n' },
      count: CORES,
      source: 'cores',
      problem: /cpu: cgroup v1 \/elsewhere is not mounted here/,
    },
    { name: 'not Linux: no /proc, no limits', tree: { etc: { hostname: 'mac\n' } }, count: CORES, source: 'cores' },
    {
      name: 'listen.workers wins over the quota',
      tree: v2({ 'cpu.max': '50000 100000\n', 'memory.max': `${HOLDS_TWO}\n` }),
      settings: { workers: 3, memorySessions: false },
      cpus: 0.5,
      memory: HOLDS_TWO,
      count: 3,
      source: 'config',
    },
    {
      name: 'memory sessions: one worker whatever the cores',
      tree: v2({ 'cpu.max': 'max 100000\n' }),
      settings: { memorySessions: true },
      count: 1,
      source: 'memory sessions',
    },
  ];
  for (const c of cases) {
    const limits = readContainerLimits(fakeRoot(t.testdir(), c.tree));
    t.equal(limits.cpus, c.cpus, `${c.name}: cpus`);
    t.equal(limits.memoryBytes, c.memory, `${c.name}: memory`);
    if (c.problem) t.match(limits.problems.join('\n'), c.problem, `${c.name}: the problem is told`);
    else t.same(limits.problems, [], `${c.name}: no problem`);
    const plan = planWorkers(c.settings ?? NOT_SET, limits, CORES);
    t.equal(plan.count, c.count, `${c.name}: count`);
    t.equal(plan.source, c.source, `${c.name}: source`);
    t.equal(plan.warnings.length > 0, c.problem !== undefined, `${c.name}: a warning exactly when a limit could not be read`);
  }
});

t.test('mount points with escaped characters are read through', async (t) => {
  const root = fakeRoot(t.testdir(), {
    'proc/self/cgroup': '0::/\n',
    'proc/self/mountinfo': '30 22 0:26 / /sys/fs/my\\040cgroups rw - cgroup2 cgroup2 rw\n',
    'sys/fs/my cgroups/cpu.max': '250000 100000\n',
  });
  t.equal(readContainerLimits(root).cpus, 2.5);
});

t.test('listen.workers > 1 with memory sessions: as set, with a warning', async (t) => {
  const plan = planWorkers({ workers: 2, memorySessions: true }, { problems: [] }, CORES);
  t.equal(plan.count, 2);
  t.match(plan.warnings.join('\n'), /memory session store/);
});

interface CpuHierarchy {
  readonly dir: string;
  setQuota(cgroup: string, cpus: number): void;
}

/** Where a child may be given a CPU quota: a v1 cpu hierarchy, or a v2 root that delegates cpu. */
function cpuHierarchy(): CpuHierarchy | string {
  if (process.platform !== 'linux') return 'not Linux';
  const period = 100000;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields[3] !== '/') continue;
    const [dir, fsType, superOptions = ''] = [fields[4], fields[sep + 1], fields[sep + 3]];
    if (fsType === 'cgroup' && superOptions.split(',').includes('cpu')) {
      return {
        dir,
        setQuota: (cgroup, cpus) => {
          writeFileSync(join(cgroup, 'cpu.cfs_period_us'), String(period));
          writeFileSync(join(cgroup, 'cpu.cfs_quota_us'), String(Math.round(cpus * period)));
        },
      };
    }
    const delegates = (() => {
      try {
        return readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('cpu');
      } catch {
        return false;
      }
    })();
    if (fsType === 'cgroup2' && delegates) {
      return { dir, setQuota: (cgroup, cpus) => writeFileSync(join(cgroup, 'cpu.max'), `${Math.round(cpus * period)} ${period}`) };
    }
  }
  return 'no cgroup hierarchy with the cpu controller at its root';
}

/** A cgroup with a CPU quota can be made here (tried once, removed), or why not. */
function canMakeCpuCgroups(): CpuHierarchy | string {
  const hierarchy = cpuHierarchy();
  if (typeof hierarchy === 'string') return hierarchy;
  const probe = join(hierarchy.dir, `kfp-probe-${process.pid}`);
  try {
    mkdirSync(probe);
  } catch (err) {
    return `cannot make a cgroup in ${hierarchy.dir}: ${(err as Error).message}`;
  }
  try {
    hierarchy.setQuota(probe, 1.5);
    return hierarchy;
  } catch (err) {
    return `cannot set a CPU quota in ${probe}: ${(err as Error).message}`;
  } finally {
    rmdirSync(probe);
  }
}

/** A child cgroup with a CPU quota, removed when the test ends. */
function cpuCgroup(t: Test, hierarchy: CpuHierarchy, cpus: number): string {
  const dir = join(hierarchy.dir, `kfp-test-${process.pid}-${Math.round(cpus * 100)}`);
  mkdirSync(dir);
  t.teardown(async () => {
    // The kernel refuses to remove a cgroup until its last process has gone.
    for (let i = 0; i < 50; i++) {
      try {
        return rmdirSync(dir);
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  hierarchy.setQuota(dir, cpus);
  return dir;
}

/** The real proxy, started inside `cgroup` (the shell joins it, then becomes node). */
async function proxyInCgroup(t: Test, stack: Stack, cgroup: string) {
  const [port, healthPort] = [await freePort(), await freePort()];
  const configFile = join(t.testdir(), 'config.yaml');
  await writeFile(
    configFile,
    JSON.stringify({
      listen: { address: `127.0.0.1:${port}`, healthAddress: `127.0.0.1:${healthPort}`, tls: { certFile: stack.pki.servingCert, keyFile: stack.pki.servingKey } },
      upstream: { url: stack.upstream.url, caFile: stack.pki.upstreamCA, clientCertFile: stack.pki.frontProxyClientCert, clientKeyFile: stack.pki.frontProxyClientKey },
      authentication: {
        jwt: [{ issuer: { url: stack.issuer.url, audiences: ['kubernetes'], certificateAuthorityFile: stack.pki.servingCA }, claimMappings: { username: { claim: 'email', prefix: '' } } }],
      },
      audit: { path: join(t.testdir(), 'audit.log') },
    }),
  );
  const child = spawn('sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" "$3" --config "$4" --log-level info', 'sh', cgroup, process.execPath, CLI, configFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let ready = 0;
  for (let i = 0; i < 200 && ready !== 200 && child.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ready = await request(`http://127.0.0.1:${healthPort}/readyz`).then(
      async (r) => (await r.body.dump(), r.statusCode),
      () => 0,
    );
  }
  const members = readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  const plan = log
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { msg?: string; workers?: number; source?: string; cpuQuota?: number })
    .find((line) => line.msg === 'worker count');
  return {
    ready,
    plan,
    /** Every process of the proxy: the one we started and its workers, all in the cgroup. */
    processes: members.length,
    inCgroup: members.includes(child.pid!),
    stop: async () => {
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}

t.test('the real proxy under a real cgroup CPU quota', async (t) => {
  const hierarchy = canMakeCpuCgroups();
  const cores = availableParallelism();
  for (const cpus of [1.5, 0.5]) {
    await t.test(`quota ${cpus} cores`, { skip: typeof hierarchy === 'string' && hierarchy }, async (t) => {
      const stack = await startStack(t);
      const cgroup = cpuCgroup(t, hierarchy as CpuHierarchy, cpus);
      const proxy = await proxyInCgroup(t, stack, cgroup);
      const expected = Math.min(Math.ceil(cpus), cores);
      t.equal(proxy.ready, 200, 'ready');
      t.ok(proxy.inCgroup, 'the proxy runs in the cgroup');
      t.equal(proxy.plan?.workers, expected, `startup log: ${expected} worker(s) on ${cores} cores`);
      t.equal(proxy.plan?.cpuQuota, cpus, 'startup log: the quota it read');
      t.equal(proxy.plan?.source, Math.ceil(cpus) < cores ? 'cgroup cpu quota' : 'cores', 'startup log: what decided');
      // Several workers run beside a primary; one runs alone.
      t.equal(proxy.processes, expected > 1 ? expected + 1 : 1, 'processes in the cgroup');
      t.equal(await proxy.stop(), 0, 'stops cleanly');
    });
  }
});

/** Kubernetes quantities as the manifests write them: "500m", "2"; "512Mi", "1Gi". */
function quantity(text: string | number): number {
  const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$/.exec(String(text));
  if (!match) throw new Error(`quantity ${text}`);
  const scale = { m: 1e-3, Ki: 1024, Mi: MiB, Gi: 1024 * MiB }[match[2] as 'm'] ?? 1;
  return Number(match[1]) * scale;
}

/** What every manifest is sized to hold beyond its idle processes, with the share of the limit left for bursts. */
const WATCH_BYTES = 80 * 1024;
const MIN_WATCHES = 1000;

const kubectl = promisify(execFile);
const noKustomize = await kubectl('kubectl', ['version', '--client']).then(() => false, () => 'kubectl (for kustomize) is not installed');

t.test('deploy/kubernetes: the limits set the workers, and the memory limit holds them', { skip: noKustomize }, async (t) => {
  const tree = join(t.testdir(), 'kubernetes');
  await cp(new URL('../deploy/kubernetes', import.meta.url).pathname, tree, { recursive: true });
  const overlays = ['base', ...(await readdir(join(tree, 'overlays'))).map((o) => `overlays/${o}`)];
  for (const overlay of overlays) {
    // The operator's files: kustomize only reads them.
    const secrets = join(tree, overlay, 'secrets');
    if (await readdir(secrets).then(() => true, () => false)) {
      for (const name of ['serving.crt', 'serving.key', 'front-proxy-client.crt', 'front-proxy-client.key', 'client-secret', 'cookie-secret']) await writeFile(join(secrets, name), 'stand-in');
    }
  }
  for (const overlay of overlays) {
    const { stdout } = await kubectl('kubectl', ['kustomize', join(tree, overlay)], { maxBuffer: 16 * MiB });
    type Doc = { kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: any };
    const objects = parseAllDocuments(stdout).map((d) => d.toJS() as Doc);
    const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'kube-front-proxy')!;
    const container = deployment.spec.template.spec.containers[0];
    const { requests = {}, limits = {} } = container.resources ?? {};
    const config = parseYaml(objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('kube-front-proxy-config'))!.data!['config.yaml']) as {
      listen: { workers?: number };
      authentication: { session?: { store?: { type?: string } } };
    };
    const settings = { ...(config.listen.workers && { workers: config.listen.workers }), memorySessions: config.authentication.session?.store?.type === 'memory' };
    t.ok(limits.cpu || config.listen.workers, `${overlay}: a CPU limit or listen.workers`);
    t.ok(limits.memory, `${overlay}: a memory limit`);
    t.equal(requests.memory, limits.memory, `${overlay}: memory requested as limited (the node never promises less than the pod may use)`);
    const memoryBytes = quantity(limits.memory);
    const limitsSeen = { ...(limits.cpu && { cpus: quantity(limits.cpu) }), memoryBytes, problems: [] };
    const plan = planWorkers(settings, limitsSeen, 128);
    t.not(plan.source, 'cores', `${overlay}: the pod sets the workers (${plan.count}, by ${plan.source}), not the node's cores`);
    t.equal(planWorkers(settings, limitsSeen, 16).count, plan.count, `${overlay}: the same on a smaller node`);
    const workers = plan.count;
    const idle = workers > 1 ? PRIMARY_BASELINE_BYTES + workers * WORKER_BASELINE_BYTES : WORKER_BASELINE_BYTES;
    const watches = Math.floor((IDLE_SHARE_OF_MEMORY * memoryBytes - idle) / WATCH_BYTES);
    t.ok(watches >= MIN_WATCHES, `${overlay}: ${limits.memory} holds ${workers} worker(s) idle and ${watches} idle watches, a quarter to spare`);
    const heap = /--max-old-space-size=(\d+)/.exec(container.env?.find((e: { name: string }) => e.name === 'NODE_OPTIONS')?.value ?? '');
    t.ok(heap, `${overlay}: a heap cap`);
    t.ok(PRIMARY_BASELINE_BYTES + workers * Number(heap?.[1]) * MiB <= memoryBytes, `${overlay}: the workers' heaps at their cap and the primary fit in ${limits.memory}`);
  }
});
