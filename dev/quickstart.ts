/**
 * `npm start`: a working local stack in one command. It makes the dev PKI if
 * missing, starts a real OIDC provider with a demo user, a dev upstream that
 * authenticates like kube-apiserver's requestheader authenticator, and the
 * proxy from config/quickstart.yaml; logs the demo user in and writes a
 * kubeconfig, then prints commands to paste.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/observe/logger.js';
import { startProxy } from '../src/server.js';
import { startDevIssuer } from './issuer.js';
import { loginWithPassword } from './login-client.js';
import { ensureDevPki } from './pki.js';
import { startDevUpstream } from './upstream.js';

/** The repository: the nearest folder above this file with a package.json (from dev/ or dist-dev/dev/). */
const ROOT = repositoryRoot(fileURLToPath(new URL('.', import.meta.url)));

function repositoryRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}
/** Fixed ports, so the printed commands and config/quickstart.yaml agree. */
const ISSUER_PORT = 5556;
const UPSTREAM_PORT = 6443;

export async function runQuickstart(): Promise<number> {
  const logger = createLogger('info');
  const pki = await ensureDevPki(join(ROOT, 'certs/dev'));
  const [servingCert, servingKey, servingCA] = await Promise.all([
    readFile(pki.servingCert, 'utf8'),
    readFile(pki.servingKey, 'utf8'),
    readFile(pki.servingCA, 'utf8'),
  ]);
  const devDir = join(ROOT, '.dev');
  const clientSecret = await ensureSecret(join(devDir, 'client-secret'));
  await ensureSecret(join(devDir, 'cookie-secret'));
  const issuer = await startDevIssuer({
    tls: { cert: servingCert, key: servingKey },
    port: ISSUER_PORT,
    clients: [
      {
        client_id: 'kube-front-proxy',
        client_secret: clientSecret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['https://127.0.0.1:8443/oauth2/callback'],
      },
    ],
  });
  const upstream = await startDevUpstream({
    tls: { cert: await readFile(pki.upstreamCert, 'utf8'), key: await readFile(pki.upstreamKey, 'utf8') },
    clientCA: await readFile(pki.frontProxyCA, 'utf8'),
    port: UPSTREAM_PORT,
  });
  const config = await loadConfig(join(ROOT, 'config/quickstart.yaml'));
  const proxy = await startProxy(config, logger);

  const login = await loginWithPassword({
    issuerURL: issuer.url,
    ca: servingCA,
    clientId: 'kubernetes',
    redirectURI: 'http://localhost:8000',
    username: 'demo',
    password: 'demo',
  });
  const kubeconfig = join(devDir, 'kubeconfig');
  await writeFile(kubeconfig, kubeconfigYaml(proxy.url, pki.servingCA, login.idToken), { mode: 0o600 });

  const rel = (p: string) => relative(process.cwd(), p) || '.';
  process.stdout.write(`
kube-front-proxy quick start is running.

  proxy      ${proxy.url}   (health and metrics: ${proxy.healthURL}/metrics)
  issuer     ${issuer.url}   (demo user: demo / demo)
  upstream   ${upstream.url}   (answers like kube-apiserver's requestheader authenticator)

Who does the upstream think you are?

  kubectl --kubeconfig ${rel(kubeconfig)} auth whoami

The same with curl (the demo user's id_token is in the kubeconfig):

  curl --cacert ${rel(pki.servingCA)} -X POST -H 'Content-Type: application/json' \\
    -H "Authorization: Bearer $(kubectl --kubeconfig ${rel(kubeconfig)} config view --raw -o jsonpath='{.users[0].user.token}')" \\
    -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' \\
    ${proxy.url}/apis/authentication.k8s.io/v1/selfsubjectreviews

Without a token you get a 401 Status:

  curl --cacert ${rel(pki.servingCA)} ${proxy.url}/api

In a browser (trust ${rel(pki.servingCA)}, or accept the warning), sign in as demo / demo:

  ${proxy.url}/oauth2/kubeconfig     your identity and a kubeconfig to download
  ${proxy.url}/debug/headers         the headers the upstream received for you

The token expires in an hour; restart to get a new one. Ctrl-C stops everything.
`);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await proxy.close();
  await Promise.all([upstream.close(), issuer.close()]);
  return 0;
}

/** A random secret kept in `file` across runs (so a restart keeps browser sessions' cookies valid). */
async function ensureSecret(file: string): Promise<string> {
  const existing = await readFile(file, 'utf8').catch(() => undefined);
  if (existing) return existing.trim();
  await mkdir(dirname(file), { recursive: true });
  const secret = randomBytes(48).toString('base64');
  await writeFile(file, secret, { mode: 0o600 });
  return secret;
}

function kubeconfigYaml(server: string, caFile: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: quickstart
  cluster:
    server: ${server}
    certificate-authority: ${caFile}
users:
- name: demo
  user:
    token: ${token}
contexts:
- name: quickstart
  context: { cluster: quickstart, user: demo }
current-context: quickstart
`;
}
