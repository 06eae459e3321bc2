// Where the upstream is and how the proxy proves who it is there: from the upstream keys or a
// kubeconfig (inline data, files relative to it, token, tokenFile), and the proxy's own token
// re-read as the kubelet rotates it. Certificates are the dev PKI's; the TLS server below asks for
// a client certificate as kube-apiserver does and answers with the one it was shown.
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import t from 'tap';
import { request } from 'undici';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { readUpstreamEndpoint } from '../../src/proxy/upstream-endpoint.js';
import { Upstream } from '../../src/proxy/upstream.js';
import { devPki } from '../helpers/stack.js';

const pki = await devPki();
const dir = mkdtempSync(join(tmpdir(), 'kfp-upstream-endpoint-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const server: Server = createServer(
  { cert: readFileSync(pki.upstreamCert), key: readFileSync(pki.upstreamKey), ca: readFileSync(pki.frontProxyCA), requestCert: true, rejectUnauthorized: false },
  (req, res) => res.end(JSON.stringify({ certificate: (req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? null })),
);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
t.teardown(() => new Promise((resolve) => server.close(resolve)));
const SERVER = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

/** Log lines of every Upstream made here, to wait for what a reload decided. */
const logs: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });

/** The upstream section as the real loader leaves it (credential-file checks included). */
function upstreamConfig(upstream: ConfigInput['upstream']) {
  const config = parseConfig({ listen: { tls: { certFile: pki.servingCert, keyFile: pki.servingKey } }, upstream }, dir).upstream;
  if (!config) throw new Error('no upstream section');
  return config;
}

interface KubeconfigUser {
  readonly token?: string;
  readonly tokenFile?: string;
  readonly 'client-certificate'?: string;
  readonly 'client-key'?: string;
  readonly 'client-certificate-data'?: string;
  readonly 'client-key-data'?: string;
}

/** A kubeconfig whose current context is one cluster and one user. */
function kubeconfigText(cluster: Record<string, string>, user: KubeconfigUser): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'kube', cluster: { server: SERVER, ...cluster } }],
    users: [{ name: 'proxy', user }],
    contexts: [{ name: 'proxy@kube', context: { cluster: 'kube', user: 'proxy' } }],
    'current-context': 'proxy@kube',
  });
}

const base64 = (file: string) => readFileSync(file).toString('base64');
const inlineCA = () => ({ 'certificate-authority-data': base64(pki.upstreamCA) });

let fileCount = 0;
/** Writes `text` to a new file under `dir`, returns its path. */
function file(text: string, name = `file-${++fileCount}`): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function newUpstream(config: ReturnType<typeof upstreamConfig>): Upstream {
  const upstream = new Upstream(config, logger);
  t.teardown(() => upstream.close());
  return upstream;
}

/**
 * Lets a new Upstream's file watchers take their first look: fs.watchFile stats
 * asynchronously, and a file rewritten to the same size within one kernel clock
 * tick keeps its mtime, so a rewrite at once could become the baseline unseen.
 * (The kubelet rotates a token after hours, not milliseconds.)
 */
const settle = () => new Promise((r) => setTimeout(r, 250));

/** The client certificate the server saw on a new connection from the upstream's pool. */
async function certificateSeen(upstream: Upstream): Promise<string | null> {
  const res = await request(`${upstream.url.origin}/`, { dispatcher: upstream.pool, reset: true });
  return ((await res.body.json()) as { certificate: string | null }).certificate;
}

/** Polls `read` until it returns `want` (the file watchers poll every second). */
async function until<T>(read: () => T, want: T, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  let got = read();
  while (JSON.stringify(got) !== JSON.stringify(want) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    got = read();
  }
  return got;
}

/** Waits for a new log line whose message matches `pattern`; returns it parsed. */
async function logged(pattern: RegExp, since: number, ms = 5_000): Promise<{ msg: string; err?: string } | undefined> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const line = logs.slice(since).find((l) => pattern.test((JSON.parse(l) as { msg: string }).msg));
    if (line) return JSON.parse(line) as { msg: string; err?: string };
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

const bearer = (token: string) => ['Authorization', `Bearer ${token}`];

t.test('from the upstream keys: the files read, the token file named, only TLS files watched for the pool', async (t) => {
  const tokenFile = file('key-token\n');
  const endpoint = readUpstreamEndpoint(
    upstreamConfig({ identity: 'impersonation', url: SERVER, caFile: pki.upstreamCA, serverName: 'localhost', clientCertFile: pki.frontProxyClientCert, clientKeyFile: pki.frontProxyClientKey, tokenFile }),
  );
  t.equal(endpoint.url.href, `${SERVER}/`);
  t.same(endpoint.ca, readFileSync(pki.upstreamCA));
  t.equal(endpoint.serverName, 'localhost');
  t.same(endpoint.clientCert, readFileSync(pki.frontProxyClientCert));
  t.same(endpoint.clientKey, readFileSync(pki.frontProxyClientKey));
  t.equal(endpoint.token, undefined);
  t.equal(endpoint.tokenFile, tokenFile);
  t.same(endpoint.tlsFiles, [pki.upstreamCA, pki.frontProxyClientCert, pki.frontProxyClientKey]);
});

t.test('a kubeconfig with inline data: the CA verifies the server, the certificate is presented', async (t) => {
  const kubeconfig = file(kubeconfigText(inlineCA(), { 'client-certificate-data': base64(pki.frontProxyClientCert), 'client-key-data': base64(pki.frontProxyClientKey) }));
  const config = upstreamConfig({ kubeconfig });
  const endpoint = readUpstreamEndpoint(config);
  t.equal(endpoint.url.origin, SERVER);
  t.same(endpoint.ca, readFileSync(pki.upstreamCA));
  t.same(endpoint.clientCert, readFileSync(pki.frontProxyClientCert));
  t.same(endpoint.clientKey, readFileSync(pki.frontProxyClientKey));
  t.same(endpoint.tlsFiles, [kubeconfig], 'only the kubeconfig itself to watch');
  const upstream = newUpstream(config);
  t.equal(await certificateSeen(upstream), 'front-proxy-client');
  t.same(upstream.ownCredentialHeaders(), [], 'a certificate credential adds no header line');
});

t.test('a kubeconfig naming files: relative to its own folder, each watched', async (t) => {
  const sub = join(dir, 'kubeconfig-files');
  mkdirSync(join(sub, 'pki'), { recursive: true });
  for (const [name, from] of [['ca.crt', pki.upstreamCA], ['client.crt', pki.frontProxyClientCert], ['client.key', pki.frontProxyClientKey]] as const) {
    writeFileSync(join(sub, 'pki', name), readFileSync(from));
  }
  const kubeconfig = join(sub, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigText({ 'certificate-authority': 'pki/ca.crt' }, { 'client-certificate': 'pki/client.crt', 'client-key': './pki/client.key' }));
  const config = upstreamConfig({ kubeconfig });
  const endpoint = readUpstreamEndpoint(config);
  t.same(endpoint.tlsFiles, [kubeconfig, join(sub, 'pki/ca.crt'), join(sub, 'pki/client.crt'), join(sub, 'pki/client.key')]);
  t.equal(await certificateSeen(newUpstream(config)), 'front-proxy-client');
});

t.test('tls-server-name: the name checked in the server certificate', async (t) => {
  const named = (name: string) => upstreamConfig({ kubeconfig: file(kubeconfigText({ ...inlineCA(), 'tls-server-name': name }, { token: 't' })), identity: 'impersonation' });
  const good = named('localhost');
  t.equal(readUpstreamEndpoint(good).serverName, 'localhost');
  t.equal(await certificateSeen(newUpstream(good)), null, 'verified as localhost; no client certificate');
  await t.rejects(certificateSeen(newUpstream(named('wrong.example'))), /wrong\.example|altnames/, 'a name the certificate lacks fails');
});

t.test('a kubeconfig token, and a tokenFile relative to the kubeconfig: the bearer line', async (t) => {
  const withToken = upstreamConfig({ identity: 'impersonation', kubeconfig: file(kubeconfigText(inlineCA(), { token: 'inline-token' })) });
  t.equal(readUpstreamEndpoint(withToken).token, 'inline-token');
  t.same(newUpstream(withToken).ownCredentialHeaders(), bearer('inline-token'));

  const sub = join(dir, 'kubeconfig-token-file');
  mkdirSync(sub);
  writeFileSync(join(sub, 'token'), '  file-token\n');
  const kubeconfig = join(sub, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigText(inlineCA(), { tokenFile: 'token' }));
  const withFile = upstreamConfig({ identity: 'impersonation', kubeconfig });
  const endpoint = readUpstreamEndpoint(withFile);
  t.equal(endpoint.tokenFile, join(sub, 'token'));
  t.same(endpoint.tlsFiles, [kubeconfig], 'the token file is watched on its own, not as a TLS file');
  t.same(newUpstream(withFile).ownCredentialHeaders(), bearer('file-token'), 'read, whitespace trimmed');

  const both = upstreamConfig({ identity: 'impersonation', kubeconfig: file(kubeconfigText(inlineCA(), { token: 'wins', tokenFile: join(sub, 'token') })) });
  t.same(newUpstream(both).ownCredentialHeaders(), bearer('wins'), "client-go: token wins over tokenFile");
});

t.test('a kubeconfig that cannot be read as one: the error names the file', async (t) => {
  const kubeconfig = file(kubeconfigText(inlineCA(), { token: 't' }));
  const config = upstreamConfig({ identity: 'impersonation', kubeconfig });
  writeFileSync(kubeconfig, 'current-context: nowhere\n');
  t.throws(() => readUpstreamEndpoint(config), { message: new RegExp(`^${kubeconfig}: current-context "nowhere" is not in contexts`) });
});

t.test('upstream.tokenFile rotating: new tokens are used; an emptied file keeps the last good one', async (t) => {
  const tokenFile = file('token-1\n');
  const upstream = newUpstream(upstreamConfig({ identity: 'impersonation', url: SERVER, caFile: pki.upstreamCA, tokenFile }));
  t.same(upstream.ownCredentialHeaders(), bearer('token-1'));

  await settle();
  writeFileSync(tokenFile, 'token-2\n');
  t.same(await until(() => upstream.ownCredentialHeaders(), bearer('token-2')), bearer('token-2'), 'rewritten in place');

  const before = logs.length;
  writeFileSync(tokenFile, '');
  t.match(await logged(/token file changed but cannot be read; keeping the old token/, before), { err: /is empty/ });
  t.same(upstream.ownCredentialHeaders(), bearer('token-2'), 'emptied: the old token stays');
  t.notOk(logs.slice(before).some((l) => l.includes('token-2')), 'the token itself is never logged');

  writeFileSync(`${tokenFile}.new`, 'token-3');
  renameSync(`${tokenFile}.new`, tokenFile);
  t.same(await until(() => upstream.ownCredentialHeaders(), bearer('token-3')), bearer('token-3'), 'replaced by rename');
});

t.test("the kubelet's projected token: a symlink through ..data, swapped atomically", async (t) => {
  // kubelet's AtomicWriter: token -> ..data/token, ..data -> a timestamped folder, ..data replaced by rename.
  const volume = join(dir, 'projected');
  mkdirSync(join(volume, '..2026_01_01_a'), { recursive: true });
  writeFileSync(join(volume, '..2026_01_01_a', 'token'), 'projected-1');
  symlinkSync('..2026_01_01_a', join(volume, '..data'));
  symlinkSync('..data/token', join(volume, 'token'));
  const upstream = newUpstream(upstreamConfig({ identity: 'impersonation', url: SERVER, caFile: pki.upstreamCA, tokenFile: join(volume, 'token') }));
  t.same(upstream.ownCredentialHeaders(), bearer('projected-1'));

  await settle();
  mkdirSync(join(volume, '..2026_01_01_b'));
  writeFileSync(join(volume, '..2026_01_01_b', 'token'), 'projected-2-longer');
  symlinkSync('..2026_01_01_b', join(volume, '..data_tmp'));
  renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
  rmSync(join(volume, '..2026_01_01_a'), { recursive: true });
  t.same(await until(() => upstream.ownCredentialHeaders(), bearer('projected-2-longer')), bearer('projected-2-longer'));
});

t.test('a kubeconfig rewritten: a new token is used; another server or a broken file keeps the old', async (t) => {
  const kubeconfig = file(kubeconfigText(inlineCA(), { token: 'kc-1' }));
  const upstream = newUpstream(upstreamConfig({ identity: 'impersonation', kubeconfig }));
  t.same(upstream.ownCredentialHeaders(), bearer('kc-1'));

  let pool = upstream.pool;
  await settle();
  writeFileSync(kubeconfig, kubeconfigText(inlineCA(), { token: 'kc-2' }));
  t.same(await until(() => upstream.ownCredentialHeaders(), bearer('kc-2')), bearer('kc-2'));
  t.not(upstream.pool, pool, 'a new pool for new requests');
  pool = upstream.pool;

  let before = logs.length;
  writeFileSync(kubeconfig, kubeconfigText(inlineCA(), { token: 'kc-other' }).replace(SERVER, 'https://127.0.0.2:6443'));
  t.match(await logged(/cannot be loaded yet; keeping the old one/, before), { err: /the server changed to https:\/\/127\.0\.0\.2:6443; restart to follow it/ });
  t.same(upstream.ownCredentialHeaders(), bearer('kc-2'), 'another server: refused, the old token stays');
  t.equal(upstream.pool, pool, 'and the old pool');
  t.equal(upstream.url.origin, SERVER);

  before = logs.length;
  writeFileSync(kubeconfig, 'clusters: [\n');
  t.match(await logged(/cannot be loaded yet; keeping the old one/, before), { err: /not valid YAML/ });
  t.same(upstream.ownCredentialHeaders(), bearer('kc-2'), 'a broken kubeconfig: the old token stays');
  t.equal(upstream.pool, pool);
  t.notOk(logs.slice(before).some((l) => l.includes('kc-2')), 'the token itself is never logged');

  writeFileSync(kubeconfig, kubeconfigText(inlineCA(), { token: 'kc-3' }));
  t.same(await until(() => upstream.ownCredentialHeaders(), bearer('kc-3')), bearer('kc-3'), 'fixed: read again');
});

t.test("a kubeconfig's tokenFile rotating is followed like upstream.tokenFile", async (t) => {
  const sub = join(dir, 'kubeconfig-rotating');
  mkdirSync(sub);
  writeFileSync(join(sub, 'token'), 'kc-file-1');
  const kubeconfig = join(sub, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigText(inlineCA(), { tokenFile: 'token' }));
  const upstream = newUpstream(upstreamConfig({ identity: 'impersonation', kubeconfig }));
  t.same(upstream.ownCredentialHeaders(), bearer('kc-file-1'));
  await settle();
  writeFileSync(join(sub, 'token'), 'kc-file-2');
  t.same(await until(() => upstream.ownCredentialHeaders(), bearer('kc-file-2')), bearer('kc-file-2'));
});

// Found writing these tests: the token-file watcher is armed once, in the constructor, from the first
// endpoint; #reload does not move it. A kubeconfig changed to name a tokenFile (or another one) is read
// once and then never followed as it rotates, so the proxy's token expires in place.
t.test('a kubeconfig changed from token to tokenFile: the new file is then followed as it rotates', async (t) => {
  const sub = join(dir, 'kubeconfig-switch');
  mkdirSync(sub);
  writeFileSync(join(sub, 'token'), 'switched-1');
  const kubeconfig = join(sub, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigText(inlineCA(), { token: 'inline' }));
  const upstream = newUpstream(upstreamConfig({ identity: 'impersonation', kubeconfig }));
  await settle();
  writeFileSync(kubeconfig, kubeconfigText(inlineCA(), { tokenFile: 'token' }));
  t.same(await until(() => upstream.ownCredentialHeaders(), bearer('switched-1')), bearer('switched-1'), 'read once, with the kubeconfig');
  writeFileSync(join(sub, 'token'), 'switched-2-rotated');
  t.same(await until(() => upstream.ownCredentialHeaders(), bearer('switched-2-rotated'), 3_000), bearer('switched-2-rotated'), 'and again when it rotates');
});
