// kube-apiserver's AuthenticationConfiguration file, read as kube reads it:
// accepted files give the jwt list, refused ones name the key inside the file
// and kube's reason; loadConfig reports them under authentication.configFile.
import t from 'tap';
import { join } from 'node:path';
import { AuthenticationConfigError, configHash, parseAuthenticationConfig, reloadProblems } from '../../src/config/authentication-config.js';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';

const HEAD = 'apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n';
const entry = (url: string, extra = '') =>
  `  - issuer: { url: "${url}", audiences: [kubernetes]${extra} }\n    claimMappings: { username: { claim: sub, prefix: "" } }\n`;
const file = (...entries: string[]) => `${HEAD}jwt:\n${entries.join('')}`;

/** The problems of a refused file (fails the test if it is accepted). */
function problems(text: string): Array<{ path: string; message: string }> {
  try {
    parseAuthenticationConfig(text, '/etc/kfp/auth.yaml');
  } catch (err) {
    if (err instanceof AuthenticationConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('the file was accepted');
}

t.test('a kube file: v1, v1beta1 and v1alpha1, YAML or JSON, CEL included', async (t) => {
  const yaml = file(entry('https://a.example.com'), `  - issuer: { url: "https://b.example.com", audiences: [x, y], audienceMatchPolicy: MatchAny }
    claimMappings:
      username: { expression: "'oidc:' + claims.sub" }
      groups: { claim: groups, prefix: "oidc:" }
    userValidationRules:
      - expression: "!user.username.startsWith('system:')"
        message: no system users
`);
  const parsed = parseAuthenticationConfig(yaml, 'auth.yaml');
  t.same(parsed.jwt.map((j) => j.issuer.url), ['https://a.example.com', 'https://b.example.com']);
  t.equal(parsed.hash, configHash(yaml));
  t.match(parsed.hash, /^sha256:[0-9a-f]{64}$/);
  for (const version of ['v1beta1', 'v1alpha1']) {
    t.equal(parseAuthenticationConfig(yaml.replace('/v1\n', `/${version}\n`), 'auth.yaml').jwt.length, 2, version);
  }
  const json = JSON.stringify({
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'AuthenticationConfiguration',
    jwt: [{ issuer: { url: 'https://a.example.com', audiences: ['kubernetes'] }, claimMappings: { username: { claim: 'sub', prefix: '' } } }],
  });
  t.equal(parseAuthenticationConfig(json, 'auth.json').jwt[0].issuer.url, 'https://a.example.com');
  // kube allows no authenticators at all (added later by a reload).
  t.same(parseAuthenticationConfig(HEAD, 'auth.yaml').jwt, []);
  t.same(parseAuthenticationConfig(`${HEAD}anonymous: { enabled: false }\n`, 'auth.yaml').anonymous, { enabled: false, conditions: [] });
});

t.test('another kind, version or file is refused naming the fix', async (t) => {
  t.match(problems(''), [{ path: '', message: /empty config data/ }]);
  t.match(problems('apiVersion: apiserver.config.k8s.io/v2\nkind: AuthenticationConfiguration\n'), [
    { path: 'apiVersion', message: /must be one of apiserver\.config\.k8s\.io\/v1, .*Write apiVersion: apiserver\.config\.k8s\.io\/v1/ },
  ]);
  t.match(problems('apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\n'), [{ path: 'kind', message: /must be AuthenticationConfiguration; got "AuthorizationConfiguration"/ }]);
  t.match(problems('kind: AuthenticationConfiguration\n'), [{ path: 'apiVersion', message: /required.*'apiVersion' is missing/ }]);
  t.match(problems('listen: {}\nupstream: {}\n'), [{ path: '', message: /this is a kube-front-proxy configuration/ }]);
  t.match(problems('- a\n'), [{ path: '', message: /expected a mapping with apiVersion/ }]);
  t.match(problems(`${HEAD}jwt: [\n`), [{ path: '', message: /not valid YAML or JSON at line \d+, column \d+/ }]);
  t.match(problems(`${HEAD}kind: AuthenticationConfiguration\n`), [{ path: '', message: /line 3.*unique/i }], 'a repeated key, as strict decoding');
});

t.test('keys kube refuses are refused with kube\'s reason and the path inside the file', async (t) => {
  t.match(problems(`${HEAD}jwt:\n  - issuer: { url: "https://a.example.com", audiences: [k] }\n    claimMappings: { username: { claim: sub } }\n`), [
    { path: 'jwt[0].claimMappings.username.prefix', message: /prefix is required when claim is set/ },
  ]);
  t.match(problems(`${HEAD}jwts: []\n`), [{ path: 'jwts', message: /unknown key; expected one of: apiVersion, kind, jwt, anonymous.*strict decoding error: unknown field "jwts"/ }]);
  t.match(problems(file(entry('https://a.example.com', ', audiance: x'))), [{ path: 'jwt[0].issuer.audiance', message: /did you mean "audiences".*strict decoding/ }]);
  t.match(problems(file(entry('https://a.example.com', ', certificateAuthorityFile: /ca.crt'))), [
    { path: 'jwt[0].issuer.certificateAuthorityFile', message: /kube-apiserver refuses it.*write the PEM inline as certificateAuthority/ },
  ]);
  t.match(problems(`${file(entry('https://a.example.com'))}    jwksRefetchInterval: 5s\n`), [{ path: 'jwt[0].jwksRefetchInterval', message: /kube-front-proxy's own/ }]);
  t.match(problems(file(entry('https://a.example.com'), entry('https://a.example.com'))), [{ path: 'jwt[1].issuer.url', message: /Duplicate value: "https:\/\/a\.example\.com" \(the same as jwt\[0\]\)/ }]);
  const discovery = ', discoveryURL: "https://idp.internal/.well-known/openid-configuration"';
  t.match(problems(file(entry('https://a.example.com', discovery), entry('https://b.example.com', discovery))), [{ path: 'jwt[1].issuer.discoveryURL', message: /Duplicate value/ }]);
  t.match(problems(`${HEAD}jwt:\n${entry('https://a.example.com').repeat(65)}`), [{ path: 'jwt', message: /at most 64/ }]);
  t.match(problems(`${HEAD}anonymous: { enabled: false, conditions: [{ path: /healthz }] }\n`), [{ path: 'anonymous.conditions', message: /enabled should be set to true when conditions are defined/ }]);
  t.match(problems(`${HEAD}anonymous: { enabled: true }\n`), [{ path: 'anonymous.enabled', message: /does not forward anonymous requests.*Set enabled: false/ }]);
  t.match(problems(`${HEAD}anonymous: { enabled: true, conditions: [{ path: /healthz, verb: get }] }\n`), [{ path: 'anonymous.conditions[0].verb', message: /unknown key; expected: path/ }]);
});

t.test('a reload may not change anonymous (kube refuses it too)', async (t) => {
  const before = parseAuthenticationConfig(HEAD, 'a');
  t.same(reloadProblems(before, parseAuthenticationConfig(file(entry('https://a.example.com')), 'a')), []);
  t.match(reloadProblems(before, parseAuthenticationConfig(`${HEAD}anonymous: { enabled: false }\n`, 'a')), [{ path: 'anonymous', message: /changed from initial configuration file/ }]);
});

const PROXY = (extra = '') => `listen:\n  tls: { certFile: tls.crt, keyFile: tls.key }\nupstream:\n  url: https://127.0.0.1:6443\nauthentication:\n  configFile: auth.yaml\n${extra}`;
const SESSION = `  session:
    oidc: { issuerURL: "https://a.example.com", clientID: web, clientSecretFile: tls.key, redirectURL: "https://proxy.example.com/oauth2/callback" }
    cookie: { secretFile: tls.key }
`;

t.test('loadConfig reads the file at start: its jwt list replaces authentication.jwt', async (t) => {
  const dir = t.testdir({ 'tls.crt': 'x', 'tls.key': 'x', 'config.yaml': PROXY(), 'auth.yaml': file(entry('https://a.example.com')) });
  const config = await loadConfig(join(dir, 'config.yaml'));
  t.equal(config.authentication.configFile, join(dir, 'auth.yaml'));
  t.same(config.authentication.jwt.map((j) => j.issuer.url), ['https://a.example.com']);
  t.ok(Object.isFrozen(config.authentication.jwt));
});

t.test('a bad file is a ConfigError naming authentication.configFile, the file and the key in it', async (t) => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['bad mapping', { 'auth.yaml': `${HEAD}jwt:\n  - issuer: { url: "https://a.example.com", audiences: [k] }\n    claimMappings: { username: { claim: sub } }\n` }, /auth\.yaml: jwt\[0\]\.claimMappings\.username\.prefix: prefix is required/],
    ['a compile error', { 'auth.yaml': `${HEAD}jwt:\n  - issuer: { url: "https://a.example.com", audiences: [k] }\n    claimMappings: { username: { expression: "claims.sub +" } }\n` }, /auth\.yaml: jwt\[0\]\.claimMappings\.username\.expression: "claims\.sub \+"/],
    ['missing file', {}, /file not found: .*auth\.yaml/],
    ['wrong kind', { 'auth.yaml': 'apiVersion: v1\nkind: ConfigMap\n' }, /auth\.yaml: apiVersion: must be one of/],
  ];
  for (const [name, files, message] of cases) {
    const dir = t.testdir({ 'tls.crt': 'x', 'tls.key': 'x', 'config.yaml': PROXY(), ...files });
    const err = await loadConfig(join(dir, 'config.yaml')).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof ConfigError, name);
    t.match((err as ConfigError).problems, [{ path: 'authentication.configFile', message }], name);
  }
});

t.test('a session needs a jwt entry of its issuer in the file whose audiences include its clientID', async (t) => {
  const check = async (auth: string) => {
    const dir = t.testdir({ 'tls.crt': 'x', 'tls.key': 'x', 'config.yaml': PROXY(SESSION), 'auth.yaml': auth });
    return loadConfig(join(dir, 'config.yaml')).then(
      () => [],
      (e: ConfigError) => [...e.problems],
    );
  };
  t.match(await check(file(entry('https://b.example.com'))), [{ path: 'authentication.configFile', message: /no jwt entry has issuer\.url https:\/\/a\.example\.com/ }]);
  t.match(await check(file(entry('https://a.example.com'))), [{ path: 'authentication.configFile', message: /does not list "web".*issuer\.audiences/ }]);
  t.same(await check(file(entry('https://a.example.com', ', audiences: [kubernetes, web], audienceMatchPolicy: MatchAny').replace('audiences: [kubernetes], ', ''))), []);
});
