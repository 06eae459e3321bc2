// upstream.identity, upstream.tokenFile and upstream.kubeconfig: each rule is a problem at its key
// that says how to fix it, and the upstream kubeconfig is checked at load (src/config/credential-files.ts)
// rather than at the first request.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
/** Files the configs below may name; certificates are read only as far as a kubeconfig's -data must be PEM. */
const FILES = { 'tls.crt': 'x', 'tls.key': 'x', 'ca.crt': PEM, 'client.crt': PEM, 'client.key': PEM, token: 'proxy-token\n' };
const LISTEN = 'listen:\n  tls: { certFile: tls.crt, keyFile: tls.key }\n';

interface KubeconfigOptions {
  readonly server?: string;
  readonly cluster?: Record<string, unknown>;
  readonly user?: Record<string, unknown>;
}

/** A kubeconfig with one context; by default a client certificate and a token, both as files beside it. */
function kubeconfig({ server = 'https://10.0.0.1:6443', cluster = { 'certificate-authority': 'ca.crt' }, user = { token: 'inline' } }: KubeconfigOptions = {}): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'kube', cluster: { server, ...cluster } }],
    users: [{ name: 'proxy', user }],
    contexts: [{ name: 'proxy@kube', context: { cluster: 'kube', user: 'proxy' } }],
    'current-context': 'proxy@kube',
  });
}

/** Loads `upstream` (YAML lines under upstream:) beside FILES and `extra` files; the problems, or the config. */
async function load(t: Test, upstream: string, extra: Record<string, string | Record<string, string>> = {}) {
  const dir = t.testdir({ ...FILES, ...extra, 'config.yaml': `${LISTEN}upstream:\n${upstream}` });
  try {
    return { dir, config: await loadConfig(join(dir, 'config.yaml')), problems: [] as ConfigProblem[] };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { dir, config: undefined, problems: err.problems };
  }
}

const at = (problems: readonly ConfigProblem[], path: string) => problems.filter((p) => p.path === path).map((p) => p.message);

t.test('schema rules: each a problem at its key, with the fix', async (t) => {
  const rows: [string, string, string, RegExp][] = [
    ['no url and no kubeconfig', '  caFile: ca.crt\n', 'upstream.url', /^required: where requests are forwarded, e\.g\. https:\/\/10\.0\.0\.1:6443 \(or set upstream\.kubeconfig\)$/],
    ['url beside kubeconfig', '  kubeconfig: kubeconfig\n  url: https://10.0.0.1:6443\n', 'upstream.url', /^set in upstream\.kubeconfig already; remove one of the two$/],
    ['caFile beside kubeconfig', '  kubeconfig: kubeconfig\n  caFile: ca.crt\n', 'upstream.caFile', /^set in upstream\.kubeconfig already; remove one of the two$/],
    ['serverName beside kubeconfig', '  kubeconfig: kubeconfig\n  serverName: kube.example\n', 'upstream.serverName', /^set in upstream\.kubeconfig already/],
    ['clientCertFile beside kubeconfig', '  kubeconfig: kubeconfig\n  clientCertFile: client.crt\n  clientKeyFile: client.key\n', 'upstream.clientCertFile', /^set in upstream\.kubeconfig already/],
    ['clientKeyFile beside kubeconfig', '  kubeconfig: kubeconfig\n  clientCertFile: client.crt\n  clientKeyFile: client.key\n', 'upstream.clientKeyFile', /^set in upstream\.kubeconfig already/],
    ['tokenFile beside kubeconfig', '  identity: impersonation\n  kubeconfig: kubeconfig\n  tokenFile: token\n', 'upstream.tokenFile', /^set in upstream\.kubeconfig already/],
    [
      'tokenFile in requestheader mode',
      '  url: https://10.0.0.1:6443\n  clientCertFile: client.crt\n  clientKeyFile: client.key\n  tokenFile: token\n',
      'upstream.tokenFile',
      /^is for identity: impersonation; kube-apiserver reads identity headers only over the client certificate \(clientCertFile\)/,
    ],
    [
      'impersonation without a credential',
      '  identity: impersonation\n  url: https://10.0.0.1:6443\n  caFile: ca.crt\n',
      'upstream.identity',
      /^impersonation needs the proxy's own credential: set upstream\.tokenFile \(a service-account token\), clientCertFile and clientKeyFile, or kubeconfig$/,
    ],
    ['an unknown identity', '  identity: oidc\n  url: https://10.0.0.1:6443\n', 'upstream.identity', /^must be one of "requestheader", "impersonation"(, "[a-z]+")*; got "oidc"$/],
    ['a tokenFile that is not there', '  identity: impersonation\n  url: https://10.0.0.1:6443\n  tokenFile: missing-token\n', 'upstream.tokenFile', /^file not found: .*missing-token/],
    ['a kubeconfig that is not there', '  kubeconfig: missing-kubeconfig\n', 'upstream.kubeconfig', /^file not found: .*missing-kubeconfig/],
  ];
  for (const [name, upstream, path, message] of rows) {
    const { problems } = await load(t, upstream, { kubeconfig: kubeconfig() });
    const found = at(problems, path);
    t.equal(found.length, 1, `${name}: one problem at ${path}; got ${JSON.stringify(problems)}`);
    t.match(found[0], message, name);
  }
});

t.test('every key a kubeconfig replaces is named at once', async (t) => {
  const { problems } = await load(
    t,
    '  identity: impersonation\n  kubeconfig: kubeconfig\n  url: https://10.0.0.1:6443\n  caFile: ca.crt\n  serverName: k\n  clientCertFile: client.crt\n  clientKeyFile: client.key\n  tokenFile: token\n',
    { kubeconfig: kubeconfig() },
  );
  t.same(
    problems.map((p) => p.path),
    ['upstream.url', 'upstream.caFile', 'upstream.serverName', 'upstream.clientCertFile', 'upstream.clientKeyFile', 'upstream.tokenFile'],
  );
});

t.test('good configs: identity defaults to requestheader; impersonation with a token file, a certificate or a kubeconfig', async (t) => {
  const requestheader = await load(t, '  url: https://10.0.0.1:6443\n  clientCertFile: client.crt\n  clientKeyFile: client.key\n');
  t.equal(requestheader.config?.upstream?.identity, 'requestheader');

  const withToken = await load(t, '  identity: impersonation\n  url: https://10.0.0.1:6443\n  caFile: ca.crt\n  tokenFile: token\n');
  t.same(withToken.problems, []);
  t.equal(withToken.config?.upstream?.identity, 'impersonation');
  t.equal(withToken.config?.upstream?.tokenFile, join(withToken.dir, 'token'), 'resolved against the config folder');

  const withCertificate = await load(t, '  identity: impersonation\n  url: https://10.0.0.1:6443\n  clientCertFile: client.crt\n  clientKeyFile: client.key\n');
  t.same(withCertificate.problems, []);

  const withKubeconfig = await load(t, '  identity: impersonation\n  kubeconfig: kube/config\n', {
    kube: { config: kubeconfig({ cluster: { 'certificate-authority': '../ca.crt' }, user: { tokenFile: '../token' } }) },
  });
  t.same(withKubeconfig.problems, []);
  t.equal(withKubeconfig.config?.upstream?.kubeconfig, join(withKubeconfig.dir, 'kube/config'));
  t.equal(withKubeconfig.config?.upstream?.url, undefined, 'the server comes from the kubeconfig');

  const requestheaderKubeconfig = await load(t, '  kubeconfig: kubeconfig\n', { kubeconfig: kubeconfig({ user: { 'client-certificate': 'client.crt', 'client-key': 'client.key' } }) });
  t.same(requestheaderKubeconfig.problems, [], 'requestheader with the certificate from a kubeconfig');
});

t.test("the upstream kubeconfig's content is checked at load, each problem naming the file", async (t) => {
  const rows: [string, string, KubeconfigOptions | string, RegExp][] = [
    [
      'a server with a path',
      'impersonation',
      { server: 'https://10.0.0.1:6443/k8s' },
      /: server https:\/\/10\.0\.0\.1:6443\/k8s has a path; the proxy forwards each request's own path, write only https:\/\/host:port$/,
    ],
    [
      'requestheader with only a token',
      'requestheader',
      { user: { token: 't' } },
      /: the user has no client certificate; in identity: requestheader kube-apiserver trusts identity headers only over one \(or set identity: impersonation\)$/,
    ],
    ['impersonation with no credential', 'impersonation', { user: {} }, /: the user has no credential; impersonation needs the proxy's own client certificate, token or tokenFile$/],
    ['a missing client certificate file', 'requestheader', { user: { 'client-certificate': 'certs/none.crt', 'client-key': 'client.key' } }, /: client-certificate .*certs\/none\.crt not found \(paths in a kubeconfig are relative to its folder\)$/],
    ['a missing tokenFile', 'impersonation', { user: { tokenFile: 'gone' } }, /: tokenFile .*\/gone not found/],
    ['an exec plugin', 'impersonation', { user: { exec: { command: 'aws' } } }, /: user "proxy" uses exec, which is not supported; use a client certificate, token or tokenFile$/],
    ['an http server', 'impersonation', { server: 'http://10.0.0.1:8080' }, /: cluster "kube" server "http:\/\/10\.0\.0\.1:8080" is not an https:\/\/ URL/],
    ['no TLS verification', 'impersonation', { cluster: { 'insecure-skip-tls-verify': true } }, /sets insecure-skip-tls-verify/],
    ['not YAML', 'impersonation', 'clusters: [\n', /: not valid YAML/],
  ];
  for (const [name, identity, content, message] of rows) {
    const { dir, problems } = await load(t, `  identity: ${identity}\n  kubeconfig: kubeconfig\n`, { kubeconfig: typeof content === 'string' ? content : kubeconfig(content) });
    const found = at(problems, 'upstream.kubeconfig');
    t.equal(found.length, 1, `${name}: one problem; got ${JSON.stringify(problems)}`);
    t.match(found[0], message, name);
    t.ok(found[0]?.startsWith(`${join(dir, 'kubeconfig')}: `), `${name}: names the file`);
  }
});

t.test('several kubeconfig problems are reported together', async (t) => {
  const { problems } = await load(t, '  identity: impersonation\n  kubeconfig: kubeconfig\n', {
    kubeconfig: kubeconfig({ server: 'https://10.0.0.1:6443/api', cluster: { 'certificate-authority': 'no-ca.crt' }, user: {} }),
  });
  const found = at(problems, 'upstream.kubeconfig');
  t.equal(found.length, 3, JSON.stringify(found));
  t.match(found, [/certificate-authority .*no-ca\.crt not found/, /has a path/, /has no credential/]);
});
