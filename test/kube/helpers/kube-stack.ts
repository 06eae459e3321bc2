/**
 * The real-apiserver stack for test/kube: one etcd + kube-apiserver per test
 * file (see apiserver.ts), and as many proxies in front of it as a file needs,
 * each with its own real dev OIDC issuer (test/helpers/stack.ts, with the
 * upstream pointed at the real apiserver instead of the dev upstream).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { request } from 'undici';
import type { Config, ConfigInput } from '../../../src/config/schema.js';
import { startProxy } from '../../../src/server.js';
import { devPki, startStack, untilReady, type Stack } from '../../helpers/stack.js';
import { startKubeCluster, type ClusterOptions, type KubeCluster, type Teardown } from './apiserver.js';
import { kubeBinaries, type RootTest } from './binaries.js';

export type { AuditEvent, KubeCluster } from './apiserver.js';

/** Most a test file may take once the binaries exist (tap's default for this repo is 120 s). */
const FILE_TIMEOUT_MS = 5 * 60_000;

/**
 * The file's cluster, or undefined when the file was skipped (or failed with
 * KFP_REQUIRE_KUBE=1) because kube-apiserver cannot be had here.
 */
export async function startKube(
  t: RootTest & Teardown,
  options: Pick<ClusterOptions, 'allowedNames' | 'extraArgs'> = {},
): Promise<KubeCluster | undefined> {
  t.setTimeout(FILE_TIMEOUT_MS);
  const binaries = await kubeBinaries(t);
  if (!binaries) return undefined;
  const pki = await devPki();
  let cluster: KubeCluster;
  const started = Date.now();
  try {
    cluster = await startKubeCluster(t, { binaries, frontProxyCA: await readFile(pki.frontProxyCA, 'utf8'), ...options });
  } catch (err) {
    // Binaries that exist but do not start are a failure, never a skip.
    t.fail(`kube-apiserver or etcd did not start: ${(err as Error).message}`);
    return undefined;
  }
  t.comment(`kube-apiserver ${cluster.version} at ${cluster.url} (${cluster.dir}), ready in ${Date.now() - started} ms`);
  return cluster;
}

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ProxiedStack extends Stack {
  readonly cluster: KubeCluster;
  /** The proxy's operational log lines (pino JSON), as written. */
  readonly logs: () => Array<Record<string, unknown>>;
  /** The proxy's own audit lines (JSON format), as written so far. */
  proxyAudit(): Promise<ProxyAuditLine[]>;
  /** Waits for the proxy's audit line of one request (the sink writes asynchronously). */
  proxyAuditLine(requestId: string, ms?: number): Promise<ProxyAuditLine>;
  /** The last audit line that matches, once written (undefined after 5 s). */
  lastProxyAuditLine(match: (line: ProxyAuditLine) => boolean): Promise<ProxyAuditLine | undefined>;
  /** A kubeconfig file that sends `token` to the proxy. */
  kubeconfig(token: string): Promise<string>;
  /** Runs kubectl with that kubeconfig; never throws on a non-zero exit. */
  kubectl(kubeconfig: string, args: readonly string[]): Promise<KubectlResult>;
}

/** The fields of a proxy audit line (src/audit/format.ts, json format) the tests read. */
export interface ProxyAuditLine {
  readonly requestId: string;
  readonly user: string | null;
  readonly groups: readonly string[];
  /** Which authenticator decided: jwt, session, x509, static_token, webhook, token_review or passthrough. */
  readonly authMethod: string | null;
  readonly method: string;
  readonly target: string;
  readonly status: number;
  readonly upstreamStatus: number | null;
  readonly kind: string;
  readonly rejectReason: string | null;
  readonly error: string | null;
  /** The user the caller asked to act as (kubectl --as), when forwarded. */
  readonly impersonatedUser: string | null;
}

export interface ProxyOptions {
  /** Changes to the proxy configuration, over the real-apiserver upstream. */
  configure?: (config: ConfigInput) => ConfigInput;
}

/** Runs kubectl, with its discovery cache in `cacheDir`; never throws on a non-zero exit. */
export function kubectl(args: readonly string[], cacheDir: string, timeoutMs = 60_000): Promise<KubectlResult> {
  return new Promise((resolve) => {
    execFile(
      'kubectl',
      [...args],
      { env: { ...process.env, KUBECACHEDIR: cacheDir }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Starts a proxy (with its own dev issuer) in front of `cluster`, ready to take requests. */
export async function startProxiedStack(t: Teardown, cluster: KubeCluster, options: ProxyOptions = {}): Promise<ProxiedStack> {
  const { logger, logs } = capturingLogger();
  const dir = await mkdtemp(join(tmpdir(), 'kfp-proxy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const auditFile = join(dir, 'audit.log');
  const stack = await startStack(t, {
    logger,
    configure: (base) => {
      const real: ConfigInput = {
        ...base,
        upstream: { ...base.upstream, url: cluster.url, caFile: cluster.caFile },
        audit: { path: auditFile, format: 'json' },
      };
      return options.configure ? options.configure(real) : real;
    },
  });
  await untilReady(stack.proxy);
  return { ...stack, ...proxyViews(stack.proxy.url, stack.pki.servingCA, dir, auditFile), cluster, logs };
}

/**
 * A second proxy with `stack`'s configuration (the same issuer, the same
 * mappings, the same tokens work) changed by `change`: to compare two upstream
 * modes on the very same tokens. Its audit log and operational log are its own.
 */
export async function startTwinProxy(t: Teardown, stack: ProxiedStack, change: (config: Config, auditFile: string) => Config): Promise<ProxiedStack> {
  const { logger, logs } = capturingLogger();
  const dir = await mkdtemp(join(tmpdir(), 'kfp-twin-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const auditFile = join(dir, 'audit.log');
  const proxy = await startProxy(change(stack.config, auditFile), logger);
  t.teardown(() => proxy.close());
  await untilReady(proxy);
  const fetch: Stack['fetch'] = (path, init = {}) =>
    request(`${proxy.url}${path}`, { dispatcher: stack.client, method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
  return { ...stack, proxy, fetch, ...proxyViews(proxy.url, stack.pki.servingCA, dir, auditFile), logs };
}

/** A pino logger whose lines the test can read. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug', base: { name: 'kube-front-proxy' } }, sink), logs: () => lines };
}

/** What a test reads and runs against one proxy: its audit lines, kubeconfigs for it, kubectl. */
function proxyViews(proxyURL: string, servingCAFile: string, dir: string, auditFile: string) {
  const auditLines = async () =>
    (await readFile(auditFile, 'utf8').catch(() => ''))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as ProxyAuditLine);
  let n = 0;
  return {
    proxyAudit: auditLines,
    async proxyAuditLine(requestId: string, ms = 5_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const line = (await auditLines()).find((l) => l.requestId === requestId);
        if (line) return line;
        if (Date.now() > deadline) throw new Error(`no proxy audit line for request ${requestId}`);
        await sleep(25);
      }
    },
    async lastProxyAuditLine(match: (line: ProxyAuditLine) => boolean) {
      for (let i = 0; i < 200; i++) {
        const line = (await auditLines()).findLast(match);
        if (line) return line;
        await sleep(25);
      }
      return undefined;
    },
    async kubeconfig(token: string) {
      const file = join(dir, `kubeconfig-${++n}`);
      await writeFile(
        file,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'proxy', cluster: { server: proxyURL, 'certificate-authority': servingCAFile } }],
          users: [{ name: 'oidc', user: { token } }],
          contexts: [{ name: 'proxy', context: { cluster: 'proxy', user: 'oidc' } }],
          'current-context': 'proxy',
        }),
        { mode: 0o600 },
      );
      return file;
    },
    kubectl: (kubeconfig: string, args: readonly string[]) => kubectl(['--kubeconfig', kubeconfig, ...args], join(dir, 'cache')),
  };
}

/** A service account in `namespace` (created if missing) and a token for it from the TokenRequest API. */
export async function serviceAccountToken(cluster: KubeCluster, namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
  await cluster.admin(`/api/v1/namespaces`, { method: 'POST', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } } });
  await cluster.admin(`/api/v1/namespaces/${namespace}/serviceaccounts`, {
    method: 'POST',
    body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } },
  });
  const { status, body } = await cluster.admin(`/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    method: 'POST',
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds } },
  });
  if (status !== 201) throw new Error(`TokenRequest for ${namespace}/${name}: ${status} ${JSON.stringify(body)}`);
  return (body as { status: { token: string } }).status.token;
}

/**
 * A namespace where pods can be made (no controller-manager runs: its default service
 * account, which pod admission checks, is made by hand), and a Role bound to `group`.
 * The statuses of the four creations, each 201 on a fresh cluster.
 */
export async function namespaceForGroup(cluster: KubeCluster, ns: string, role: { name: string; binding: string; group: string; rules: readonly object[] }): Promise<number[]> {
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}`;
  const answers = [
    await cluster.admin('/api/v1/namespaces', { method: 'POST', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } }),
    await cluster.admin(`/api/v1/namespaces/${ns}/serviceaccounts`, { method: 'POST', body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } } }),
    await cluster.admin(`${rbac}/roles`, { method: 'POST', body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: role.name }, rules: role.rules } }),
    await cluster.admin(`${rbac}/rolebindings`, {
      method: 'POST',
      body: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: role.binding },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.name },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: role.group }],
      },
    }),
  ];
  return answers.map((r) => r.status);
}

/** kubectl as the cluster admin (client certificate, straight to kube-apiserver). */
export function adminKubectl(cluster: KubeCluster, args: readonly string[]): Promise<KubectlResult> {
  return kubectl(['--kubeconfig', cluster.adminKubeconfig, ...args], join(cluster.dir, 'kubectl-cache'));
}
