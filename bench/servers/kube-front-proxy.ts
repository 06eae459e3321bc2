/**
 * kube-front-proxy under test: the real entry point (src/cli) built from this
 * tree, with a bench configuration, started as a child process; and the
 * no-auth build scenarios 1 and 3 compare with.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { Child, PROXY_CLI, benchScript, nodeFlags, stopTree } from '../children.js';
import { KFP, NOAUTH } from '../results.js';
import { until } from '../wait.js';
import { probe, slug, treeOf, type Server, type ServerEnv } from './server.js';

export interface ProxyOptions {
  /** authentication.tokenCacheMaxEntries: 0, so every request verifies its token. */
  readonly cacheOff?: boolean;
  /** The same identity mapped by CEL expressions instead of claim and prefix (scenario 3's CEL rows). */
  readonly cel?: boolean;
  /** Run under --cpu-prof, writing the profiles here. */
  readonly profileDir?: string;
  /** What node runs after its flags: the real entry point unless a build says otherwise. */
  readonly entry?: readonly string[];
  /** The build lets a request without a token through (checked at start: 200, where the real one answers 401). */
  readonly anonymous?: boolean;
  /** listen.tls.clientCAFile: client certificates it verifies are an identity (scenario 7). */
  readonly clientCAFile?: string;
  /** More authentication keys beside the JWT issuer (scenario 7: staticTokenFile, webhook, tokenReview, passthrough). */
  readonly authentication?: Readonly<Record<string, unknown>>;
  /** upstream.http2, where a row compares it with the default (unset). */
  readonly upstreamHttp2?: 'off' | 'auto';
}

/**
 * The no-auth build: the same command line and proxy with a constant identity
 * injected as its authenticator (bench/noauth-authenticator.ts).
 */
export function startNoAuthProxy(env: ServerEnv): Promise<Server> {
  return startProxy(env, NOAUTH, { entry: [benchScript('noauth-authenticator')], anonymous: true });
}

/** Starts kube-front-proxy from its real entry point with a bench configuration; resolves when /readyz says ready. */
export async function startProxy(env: ServerEnv, name: string, opts: ProxyOptions): Promise<Server> {
  const file = join(env.work, `${slug(name)}.yaml`);
  writeFileSync(file, JSON.stringify(proxyConfig(env, name, opts), null, 2));
  const args = [
    ...nodeFlags(),
    ...(opts.profileDir ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir, '--cpu-prof-interval', '500'] : []),
    ...(opts.entry ?? [PROXY_CLI]),
    '--config',
    file,
    '--log-level',
    'info',
  ];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const child = new Child(name, proc, join(env.logs, `${slug(name)}.log`));
  const stop = async () => {
    if (!child.alive) return;
    const t0 = Date.now();
    // The profiler writes its file on the way out: give that process longer.
    await stopTree(child, 'SIGTERM', opts.profileDir ? 20_000 : 5_000);
    env.log(`  stopped ${name} in ${Date.now() - t0} ms${child.killed ? ' (killed)' : ''}`);
    if (child.killed) env.stuck.add(name.replace(/ (watches )?\d+$/, ''));
  };
  try {
    const { url, healthURL, workers } = await listening(child);
    await until(
      async () => (await fetch(`${healthURL}/readyz`).then((r) => r.status, () => 0)) === 200,
      30_000,
      `${name} /readyz`,
    );
    // The no-auth build must let a request without a token through, and the real one must not.
    const status = await probe(url, env.pki.servingCA);
    if (opts.anonymous ? status !== 200 : status !== 401) {
      throw new Error(`${name}: a request without a token got ${status}; expected ${opts.anonymous ? '200 (was the authenticator swapped?)' : '401'}`);
    }
    return { name, url, pids: treeOf(child), stop, workers, pid: child.pid };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The claim-mapped identity written in CEL as kube's documentation writes it, plus one extra
 * (the issuer: one more identity header than the claim-mapped row carries), one claim rule and one user rule.
 */
const CEL_MAPPING = {
  claimMappings: {
    username: { expression: "claims.?email_verified.orValue(true) == true ? claims.email : ''" },
    groups: { expression: "claims.?groups.orValue([]).map(g, 'oidc:' + g)" },
    uid: { expression: 'claims.sub' },
    extra: [{ key: 'example.com/issuer', valueExpression: 'claims.iss' }],
  },
  claimValidationRules: [{ expression: "claims.aud == 'kubernetes'" }],
  userValidationRules: [{ expression: "!user.username.startsWith('system:')" }],
};

/** The bench configuration: one issuer, the front-proxy client certificate upstream, an audit log. */
function proxyConfig(env: ServerEnv, name: string, opts: ProxyOptions): object {
  const { pki } = env;
  const config = {
    listen: {
      address: '127.0.0.1:0',
      healthAddress: '127.0.0.1:0',
      tls: { certFile: pki.servingCert, keyFile: pki.servingKey, ...(opts.clientCAFile && { clientCAFile: opts.clientCAFile }) },
      ...(env.proxyWorkers !== undefined && { workers: env.proxyWorkers }),
    },
    upstream: {
      url: env.upstreamURL,
      caFile: pki.upstreamCA,
      clientCertFile: pki.frontProxyClientCert,
      clientKeyFile: pki.frontProxyClientKey,
      ...(opts.upstreamHttp2 && { http2: opts.upstreamHttp2 }),
    },
    authentication: {
      jwt: [
        {
          issuer: { url: env.issuer.url, audiences: ['kubernetes'], certificateAuthorityFile: pki.servingCA },
          ...(opts.cel ? CEL_MAPPING : { claimMappings: { username: { claim: 'email', prefix: '' }, groups: { claim: 'groups', prefix: 'oidc:' }, uid: { claim: 'sub' } } }),
        },
      ],
      ...(opts.cacheOff && { tokenCacheMaxEntries: 0 }),
      ...opts.authentication,
    },
    // The audit line is part of every request's cost, as in production.
    audit: { path: join(env.work, `${slug(name)}-audit.log`), format: 'combined' },
  };
  if (env.proxyWorkers !== undefined && !acceptsConfig(config, env.work)) {
    // A proxy built before listen.workers existed runs as one process anyway.
    delete (config.listen as { workers?: number }).workers;
  }
  return config;
}

/**
 * upstream.http2 as this tree reads the bench configuration, which sets none:
 * the proxy's own default (whether h2 is used depends on the upstream offering it too).
 */
export function upstreamHttp2Default(env: ServerEnv): string {
  try {
    return parseConfig(proxyConfig(env, KFP, {}), env.work, { checkFiles: false }).upstream?.http2 ?? 'off';
  } catch {
    return 'unknown';
  }
}

/** Whether this tree's configuration schema accepts `config` (shape only, files not checked). */
function acceptsConfig(config: unknown, dir: string): boolean {
  try {
    parseConfig(config, dir, { checkFiles: false });
    return true;
  } catch {
    return false;
  }
}

/**
 * Its URLs and worker count, from its log: one process logs "listening" with
 * both URLs; a cluster's primary logs the health URL and each worker its url.
 */
function listening(child: Child): Promise<{ url: string; healthURL: string; workers: number }> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let url = '';
    let healthURL = '';
    let workers = 1;
    const timer = setTimeout(() => reject(new Error(`${child.name}: no "listening" log line within 60 s:\n${child.tail()}`)), 60_000);
    child.process.stderr!.on('data', (data: Buffer) => {
      buffered += data.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string; healthURL?: string; workers?: number };
          if (typeof entry.workers === 'number') workers = entry.workers;
          if (entry.healthURL) healthURL = entry.healthURL;
          if (entry.url && /listening/.test(entry.msg ?? '')) url = entry.url;
        } catch {
          // not a log line
        }
        if (url && healthURL) {
          clearTimeout(timer);
          resolve({ url, healthURL, workers });
        }
      }
    });
    void child.exited().then((code) => {
      clearTimeout(timer);
      reject(new Error(`${child.name} exited (${code}) before listening:\n${child.tail()}`));
    });
  });
}
