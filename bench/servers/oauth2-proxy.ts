/**
 * oauth2-proxy under test (issue 15), doing kube-front-proxy's job of scenario 1
 * as far as it can: TLS in with the bench serving certificate; a bearer JWT of
 * the bench issuer verified on every request (`--skip-jwt-bearer-tokens`, keys
 * from the issuer's OIDC discovery and JWKS); TLS to the upstream stand-in,
 * trusting its CA; the user on its X-Forwarded-* headers; its request log in a
 * file. The binary is the one scripts/oauth2-proxy/build.sh builds with
 * `go install`; without it the row is left out, never the run. What it does
 * less or more than kube-front-proxy is in bench/README.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, Child, stopTree } from '../children.js';
import { OAUTH2_PROXY } from '../results.js';
import { mintTokens } from '../tokens.js';
import { until } from '../wait.js';
import { canConnect, freePort, probe, slug, treeOf, type Server, type ServerEnv } from './server.js';

/** Builds (cached) and finds the binary; `--check` never builds. */
export const BUILD_SCRIPT = join(BENCH_DIR, '..', 'scripts', 'oauth2-proxy', 'build.sh');

let found: { binary?: string } | undefined;

/** The built binary (OAUTH2_PROXY, or build.sh's cache folder), or undefined when none is built; asked once per process. */
export function oauth2ProxyBinary(): string | undefined {
  if (!found) {
    const run = spawnSync('bash', [BUILD_SCRIPT, '--check'], { encoding: 'utf8' });
    const path = run.status === 0 ? /^OAUTH2_PROXY=(.+)$/m.exec(run.stdout)?.[1] : undefined;
    found = path && existsSync(path) ? { binary: path } : {};
  }
  return found.binary;
}

/** What `oauth2-proxy --version` says after its name ("v7.15.6 (built with go1.26.8)"), or undefined when none is built. */
export function oauth2ProxyVersion(): string | undefined {
  const binary = oauth2ProxyBinary();
  if (!binary) return undefined;
  const run = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  return run.status === 0 ? run.stdout.trim().replace(/^oauth2-proxy\s+/, '') : undefined;
}

/** What the command line needs beyond the bench's PKI and issuer. */
interface Setup {
  readonly port: number;
  readonly accessLog: string;
  readonly cookieSecret: string;
}

/**
 * Its command line. Everything not named here is as shipped, Go's HTTP client
 * defaults included (2 idle upstream connections kept per host).
 */
export function oauth2ProxyArgs(env: ServerEnv, setup: Setup): string[] {
  const { pki } = env;
  return [
    // TLS in: with a certificate it serves HTTPS only (no plain HTTP listener).
    `--https-address=127.0.0.1:${setup.port}`,
    `--tls-cert-file=${pki.servingCert}`,
    `--tls-key-file=${pki.servingKey}`,
    // One upstream for every path.
    `--upstream=${env.upstreamURL}/`,
    // The bench issuer, found by OIDC discovery over TLS; tokens must carry aud=kubernetes (the client id).
    '--provider=oidc',
    `--oidc-issuer-url=${env.issuer.url}`,
    // There is no upstream CA option: the provider's CA files become the roots of Go's default
    // HTTP transport, which the upstream proxy copies. So these name the issuer's CA and the upstream's.
    `--provider-ca-file=${pki.servingCA}`,
    `--provider-ca-file=${pki.upstreamCA}`,
    '--client-id=kubernetes',
    // Required by its validation, never used: the bench has no browser login.
    '--client-secret=bench-unused',
    `--cookie-secret=${setup.cookieSecret}`,
    '--email-domain=*',
    // A verified bearer JWT is a session; an invalid one is refused (403), none gets 401, no redirect to a login.
    '--skip-jwt-bearer-tokens=true',
    '--bearer-token-login-fallback=false',
    '--api-route=^/',
    // X-Forwarded-User is the email (kube-front-proxy's username claim), with -Email, -Groups, -Preferred-Username.
    '--pass-user-headers=true',
    '--prefer-email-to-user=true',
    // Its request log (one line per request, with the user) and its other logs, to a file.
    '--request-logging=true',
    `--logging-filename=${setup.accessLog}`,
  ];
}

/** Starts oauth2-proxy; resolves once a request without a token gets 401 and one with the bench token 200. */
export async function startOauth2Proxy(env: ServerEnv): Promise<Server> {
  const binary = oauth2ProxyBinary();
  if (!binary) throw new Error(`oauth2-proxy is not built: ${BUILD_SCRIPT}`);
  const { pki } = env;
  const port = await freePort();
  const accessLog = join(env.work, `${slug(OAUTH2_PROXY)}-access.log`);
  const args = oauth2ProxyArgs(env, { port, accessLog, cookieSecret: randomBytes(16).toString('hex') });
  const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const child = new Child(OAUTH2_PROXY, proc, join(env.logs, `${slug(OAUTH2_PROXY)}.log`));
  const stop = () => stopTree(child, 'SIGTERM', 10_000);
  const logTail = () => (existsSync(accessLog) ? readFileSync(accessLog, 'utf8').split('\n').slice(-20).join('\n') : '');
  try {
    await until(async () => {
      if (!child.alive) throw new Error(`oauth2-proxy exited:\n${child.tail()}\n${logTail()}`);
      return canConnect(port);
    }, 30_000, 'oauth2-proxy to listen');
    const url = `https://127.0.0.1:${port}`;
    const anonymous = await probe(url, pki.servingCA);
    if (anonymous !== 401) throw new Error(`oauth2-proxy: a request without a token got ${anonymous}, expected 401; see ${accessLog}`);
    // The bench token verified, and the upstream took its X-Forwarded-User; the access log names the user.
    const [token] = await mintTokens(env.issuer, 'RS256', 1);
    const status = await probe(url, pki.servingCA, { authorization: `Bearer ${token}` });
    if (status !== 200) throw new Error(`oauth2-proxy: a request with the bench token got ${status}, expected 200:\n${logTail()}`);
    await until(async () => logTail().includes('bench@example.com'), 5_000, 'the user in the oauth2-proxy access log');
    return { name: OAUTH2_PROXY, url, pids: treeOf(child), stop, pid: child.pid };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Its command line for the notes: file paths by their names, the port and secret as placeholders. */
export function oauth2ProxyFlags(env: ServerEnv): string {
  return oauth2ProxyArgs(env, { port: 0, accessLog: '<work>/oauth2-proxy-access.log', cookieSecret: '<random>' })
    .map((arg) => arg.replace(/^(--https-address=127\.0\.0\.1:)0$/, '$1<port>').replace(/=\/\S*\/([^/]+)$/, '=$1'))
    .join(' ');
}
