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
import type { ConfigInput } from '../../../src/config/schema.js';
import { devPki, startStack, untilReady, type Stack } from '../../helpers/stack.js';
import { startKubeCluster, type KubeCluster, type Teardown } from './apiserver.js';
import { kubeBinaries, type RootTest } from './binaries.js';

export type { AuditEvent, KubeCluster } from './apiserver.js';

/** Most a test file may take once the binaries exist (tap's default for this repo is 120 s). */
const FILE_TIMEOUT_MS = 5 * 60_000;

/**
 * The file's cluster, or undefined when the file was skipped (or failed with
 * KFP_REQUIRE_KUBE=1) because kube-apiserver cannot be had here.
 */
export async function startKube(t: RootTest & Teardown, options: { allowedNames?: readonly string[] } = {}): Promise<KubeCluster | undefined> {
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
  readonly method: string;
  readonly target: string;
  readonly status: number;
  readonly upstreamStatus: number | null;
  readonly kind: string;
  readonly rejectReason: string | null;
  readonly error: string | null;
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
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: 'debug', base: { name: 'kube-front-proxy' } }, sink);
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
  const auditLines = async () =>
    (await readFile(auditFile, 'utf8').catch(() => ''))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as ProxyAuditLine);
  let n = 0;
  return {
    ...stack,
    cluster,
    logs: () => lines,
    proxyAudit: auditLines,
    async proxyAuditLine(requestId, ms = 5_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const line = (await auditLines()).find((l) => l.requestId === requestId);
        if (line) return line;
        if (Date.now() > deadline) throw new Error(`no proxy audit line for request ${requestId}`);
        await sleep(25);
      }
    },
    async kubeconfig(token) {
      const file = join(dir, `kubeconfig-${++n}`);
      await writeFile(
        file,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'proxy', cluster: { server: stack.proxy.url, 'certificate-authority': stack.pki.servingCA } }],
          users: [{ name: 'oidc', user: { token } }],
          contexts: [{ name: 'proxy', context: { cluster: 'proxy', user: 'oidc' } }],
          'current-context': 'proxy',
        }),
        { mode: 0o600 },
      );
      return file;
    },
    kubectl: (kubeconfig, args) => kubectl(['--kubeconfig', kubeconfig, ...args], join(dir, 'cache')),
  };
}

/** kubectl as the cluster admin (client certificate, straight to kube-apiserver). */
export function adminKubectl(cluster: KubeCluster, args: readonly string[]): Promise<KubectlResult> {
  return kubectl(['--kubeconfig', cluster.adminKubeconfig, ...args], join(cluster.dir, 'kubectl-cache'));
}
