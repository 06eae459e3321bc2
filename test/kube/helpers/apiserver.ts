/**
 * A real etcd and kube-apiserver on free loopback ports, configured the way a
 * cluster admin fronts it with kube-front-proxy: the requestheader flags
 * trusting the given front-proxy CA for CN=front-proxy-client, RBAC, an audit
 * log, and no other way for an end user to authenticate (no token file,
 * anonymous off, no OIDC). The only other credential is an admin client
 * certificate (O=system:masters) the tests use for their own setup calls.
 *
 * Certificates and keys are made per run; everything lives in a temporary
 * folder removed in teardown (kept with KFP_KEEP_KUBE=1, for a look at the logs).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, webcrypto } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { createCA, issueCertificate, type CertAndKey } from '../../../dev/pki.js';
import type { KubeBinaries } from './binaries.js';
import { freePort } from '../../helpers/ports.js';

x509.cryptoProvider.set(webcrypto);

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface ClusterOptions {
  readonly binaries: KubeBinaries;
  /** PEM of the CA kube-apiserver trusts for request headers (--requestheader-client-ca-file). */
  readonly frontProxyCA: string;
  /** --requestheader-allowed-names; default front-proxy-client. */
  readonly allowedNames?: readonly string[];
  /**
   * More kube-apiserver flags (e.g. --authentication-config, --token-auth-file,
   * --authentication-token-webhook-config-file), appended after the defaults;
   * may be a function of the cluster's folder, for files written before the start.
   */
  readonly extraArgs?: readonly string[] | ((dir: string) => readonly string[] | Promise<readonly string[]>);
}

/** One event of kube-apiserver's JSON audit log (the fields the tests read). */
export interface AuditEvent {
  readonly auditID: string;
  readonly stage: string;
  readonly requestURI: string;
  readonly verb: string;
  readonly user: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  readonly impersonatedUser?: { username?: string; groups?: string[] };
  readonly responseStatus?: { code?: number; message?: string; reason?: string };
  readonly annotations?: Record<string, string>;
}

export interface KubeCluster {
  /** https://127.0.0.1:port */
  readonly url: string;
  /** The CA file that verifies kube-apiserver's serving certificate; it is also --client-ca-file. */
  readonly caFile: string;
  /** That CA with its key, to issue client certificates kube-apiserver accepts (issueClientCertificate). */
  readonly ca: CertAndKey;
  /** A kubeconfig with the admin client certificate (system:masters). */
  readonly adminKubeconfig: string;
  /** The folder with every file of this cluster (certificates, logs, etcd data). */
  readonly dir: string;
  /** The version kube-apiserver reports at /version. */
  readonly version: string;
  /** A request as the admin, JSON in and out. */
  admin(path: string, init?: { method?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any }>;
  /** Every audit event written so far. */
  auditEvents(): Promise<AuditEvent[]>;
  /** Waits until an event matching `match` is in the audit log (the log is written as requests finish). */
  auditEvent(match: (e: AuditEvent) => boolean, ms?: number): Promise<AuditEvent>;
  /** The last lines of kube-apiserver's own log, for failure messages. */
  logTail(lines?: number): Promise<string>;
  /** kube-apiserver's own log, whole (compare lengths to see what one request logged). */
  log(): Promise<string>;
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
`;


/** A client certificate with organizations (Kubernetes groups), which dev/pki.ts does not make. */
export async function issueClientCertificate(
  ca: CertAndKey,
  commonName: string,
  organizations: string | readonly string[],
  validity: { notBefore?: Date; notAfter?: Date } = {},
): Promise<CertAndKey> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKeyDer = createPrivateKey(ca.keyPem).export({ type: 'pkcs8', format: 'der' });
  const caKey = await webcrypto.subtle.importKey('pkcs8', caKeyDer, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    subject: [...[organizations].flat().map((O) => ({ O: [O] })), { CN: [commonName] }],
    issuer: caCert.subjectName,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    notBefore: validity.notBefore ?? new Date(now - 3_600_000),
    notAfter: validity.notAfter ?? new Date(now + 24 * 3_600_000),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  const keyDer = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem'), keyPem: x509.PemConverter.encode(keyDer, 'PRIVATE KEY') };
}

/** A child process whose output goes to a file; `exited` settles when it ends. */
interface Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly log: string;
}

function startChild(file: string, args: string[], log: string): Child {
  const fd = openSync(log, 'a');
  const proc = spawn(file, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, exited, log };
}

async function stopChild(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  child.proc.kill('SIGTERM');
  // An unref'd timer: a pending 10 s sleep would keep the test process alive after the child is gone.
  const stopped = await Promise.race([child.exited.then(() => true), sleep(10_000, false, { ref: false })]);
  if (!stopped) {
    child.proc.kill('SIGKILL');
    await child.exited;
  }
}

const tail = async (file: string, lines = 40) =>
  (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(-lines).join('\n');

/** Every child still running when the process exits is killed, so a crashed test leaves nothing behind. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** Polls `probe` until it returns true, failing with `describe()` if `child` exits first or time runs out. */
async function until(probe: () => Promise<boolean>, child: Child, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let exited = false;
  void child.exited.then(() => (exited = true));
  while (!(await probe().catch(() => false))) {
    if (exited) throw new Error(`${what} exited with ${child.proc.exitCode ?? child.proc.signalCode} before it was ready:\n${await tail(child.log)}`);
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${ms} ms:\n${await tail(child.log)}`);
    await sleep(100);
  }
}

/**
 * Starts etcd and kube-apiserver, waits for /readyz, and stops both (and
 * removes their folder) in `t`'s teardown.
 */
export async function startKubeCluster(t: Teardown, options: ClusterOptions): Promise<KubeCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'kfp-kube-'));
  const children: Child[] = [];
  const agents: Agent[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(agents.map((a) => a.close()));
    // The apiserver first, so it does not log etcd errors while stopping.
    for (const child of children.reverse()) {
      await stopChild(child);
      running.delete(child.proc);
    }
    if (process.env.KFP_KEEP_KUBE === '1') process.stderr.write(`kept the test cluster's files in ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  };
  t.teardown(stop);
  try {
    return await start(dir, options, children, agents);
  } catch (err) {
    // A failed start stops what did start at once: the caller reports the error and may never reach teardown.
    await stop();
    throw err;
  }
}

async function start(dir: string, options: ClusterOptions, children: Child[], agents: Agent[]): Promise<KubeCluster> {
  const file = (name: string) => join(dir, name);
  // Per-run PKI: a cluster CA signs the serving certificate and the admin's client certificate.
  const clusterCA = await createCA('kube-front-proxy test cluster CA');
  const [serving, admin] = await Promise.all([
    issueCertificate({
      caCertPem: clusterCA.certPem,
      caKeyPem: clusterCA.keyPem,
      commonName: 'kube-apiserver',
      serverAuth: true,
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      ips: ['127.0.0.1'],
    }),
    issueClientCertificate(clusterCA, 'kfp-test-admin', 'system:masters'),
  ]);
  const serviceAccountKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string; // SEC1: --service-account-key-file does not read PKCS#8
  await Promise.all([
    writeFile(file('ca.crt'), clusterCA.certPem),
    writeFile(file('serving.crt'), serving.certPem),
    writeFile(file('serving.key'), serving.keyPem, { mode: 0o600 }),
    writeFile(file('admin.crt'), admin.certPem),
    writeFile(file('admin.key'), admin.keyPem, { mode: 0o600 }),
    writeFile(file('sa.key'), serviceAccountKey, { mode: 0o600 }),
    writeFile(file('front-proxy-ca.crt'), options.frontProxyCA),
    writeFile(file('audit-policy.yaml'), AUDIT_POLICY),
  ]);

  // etcd: plain HTTP on loopback (only kube-apiserver talks to it); no fsync, it is thrown away.
  let etcdURL = '';
  for (let attempt = 1; ; attempt++) {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    etcdURL = `http://127.0.0.1:${clientPort}`;
    const peerURL = `http://127.0.0.1:${peerPort}`;
    const etcd = startChild(
      options.binaries.etcd,
      [
        '--name=kfp-test',
        `--data-dir=${file(`etcd-data-${attempt}`)}`,
        `--listen-client-urls=${etcdURL}`,
        `--advertise-client-urls=${etcdURL}`,
        `--listen-peer-urls=${peerURL}`,
        `--initial-advertise-peer-urls=${peerURL}`,
        `--initial-cluster=kfp-test=${peerURL}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      file('etcd.log'),
    );
    children.push(etcd);
    running.add(etcd.proc);
    try {
      await until(async () => (await request(`${etcdURL}/health`)).statusCode === 200, etcd, 'etcd', 30_000);
      break;
    } catch (err) {
      await stopChild(etcd);
      if (attempt >= 3) throw err;
    }
  }

  const extraArgs = typeof options.extraArgs === 'function' ? await options.extraArgs(dir) : (options.extraArgs ?? []);
  const adminAgent = new Agent({ connect: { ca: clusterCA.certPem, cert: admin.certPem, key: admin.keyPem } });
  agents.push(adminAgent);
  let url = '';
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    url = `https://127.0.0.1:${port}`;
    const apiserver = startChild(
      options.binaries.apiserver,
      [
        `--etcd-servers=${etcdURL}`,
        `--etcd-prefix=/registry-${attempt}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${port}`,
        `--tls-cert-file=${file('serving.crt')}`,
        `--tls-private-key-file=${file('serving.key')}`,
        `--cert-dir=${dir}`,
        // End users: only the request headers of the front proxy. Admin: a client certificate.
        '--anonymous-auth=false',
        `--client-ca-file=${file('ca.crt')}`,
        `--requestheader-client-ca-file=${file('front-proxy-ca.crt')}`,
        `--requestheader-allowed-names=${(options.allowedNames ?? ['front-proxy-client']).join(',')}`,
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        '--requestheader-uid-headers=X-Remote-Uid',
        '--authorization-mode=RBAC',
        `--audit-policy-file=${file('audit-policy.yaml')}`,
        `--audit-log-path=${file('audit.log')}`,
        '--audit-log-format=json',
        '--audit-log-mode=blocking',
        // Service accounts: required flags, unused by the tests.
        `--service-account-key-file=${file('sa.key')}`,
        `--service-account-signing-key-file=${file('sa.key')}`,
        '--service-account-issuer=https://kubernetes.default.svc',
        '--service-cluster-ip-range=10.96.0.0/16',
        '--profiling=false',
        // The default reconciler refuses a loopback advertise address (envtest does the same).
        '--endpoint-reconciler-type=none',
        ...extraArgs,
      ],
      file('kube-apiserver.log'),
    );
    children.push(apiserver);
    running.add(apiserver.proc);
    try {
      await until(
        async () => (await request(`${url}/readyz`, { dispatcher: adminAgent }).then(async (r) => (await r.body.text(), r.statusCode))) === 200,
        apiserver,
        'kube-apiserver',
        90_000,
      );
      break;
    } catch (err) {
      await stopChild(apiserver);
      // Only a lost race for the port is worth another try.
      if (attempt >= 3 || !/address already in use/.test(String(err))) throw err;
    }
  }

  await writeFile(
    file('admin.kubeconfig'),
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: url, 'certificate-authority': file('ca.crt') } }],
      users: [{ name: 'admin', user: { 'client-certificate': file('admin.crt'), 'client-key': file('admin.key') } }],
      contexts: [{ name: 'admin', context: { cluster: 'test', user: 'admin' } }],
      'current-context': 'admin',
    }),
  );

  const adminRequest: KubeCluster['admin'] = async (path, init = {}) => {
    const res = await request(`${url}${path}`, {
      dispatcher: adminAgent,
      method: (init.method ?? 'GET') as 'GET',
      headers: { accept: 'application/json', ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    const text = await res.body.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.statusCode, body };
  };

  const auditEvents = async (): Promise<AuditEvent[]> =>
    (await readFile(file('audit.log'), 'utf8').catch(() => ''))
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as AuditEvent);

  const version = ((await adminRequest('/version')).body as { gitVersion: string }).gitVersion;
  return {
    url,
    caFile: file('ca.crt'),
    ca: clusterCA,
    adminKubeconfig: file('admin.kubeconfig'),
    dir,
    version,
    admin: adminRequest,
    auditEvents,
    async auditEvent(match, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = (await auditEvents()).find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error('no matching audit event');
        await sleep(50);
      }
    },
    logTail: (lines) => tail(file('kube-apiserver.log'), lines),
    log: () => readFile(file('kube-apiserver.log'), 'utf8'),
  };
}
