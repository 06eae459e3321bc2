import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, formatConfigError, type ConfigProblem } from '../../src/config/errors.js';
import { loadConfig, parseConfig } from '../../src/config/load.js';

/** Files every config below may name; their content is never parsed here. */
const FILES = { 'tls.crt': 'x', 'tls.key': 'x', 'ca.crt': 'x', 'client.crt': 'x', 'client.key': 'x', 'idp-ca.crt': 'x' };

const LISTEN = `listen:
  tls: { certFile: tls.crt, keyFile: tls.key }
`;
const UPSTREAM = `upstream:
  url: https://127.0.0.1:6443
`;
const MINIMAL = LISTEN + UPSTREAM;

/** An authentication section with the given jwt entries (YAML flow mappings). */
const jwt = (...entries: string[]) => `authentication:\n  jwt:\n${entries.map((e) => `    - ${e}\n`).join('')}`;
const entry = (url: string, mappings = 'username: { claim: email, prefix: "" }', issuerExtra = '') =>
  `{ issuer: { url: "${url}", audiences: [kubernetes]${issuerExtra} }, claimMappings: { ${mappings} } }`;

/** Loads `yaml` from a fresh folder holding FILES; returns the ConfigError it must throw, and the folder. */
async function loadFailing(t: Test, yaml: string): Promise<{ err: ConfigError; dir: string }> {
  const dir = t.testdir({ ...FILES, 'config.yaml': yaml });
  try {
    await loadConfig(join(dir, 'config.yaml'));
  } catch (err) {
    if (err instanceof ConfigError) return { err, dir };
    throw err;
  }
  throw new Error('loadConfig accepted a broken config');
}

interface Row {
  readonly name: string;
  readonly yaml: string;
  readonly path: string;
  /** A regex, or one built from the test folder (for messages naming resolved paths). */
  readonly message: RegExp | ((dir: string) => RegExp);
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const rows: Row[] = [
  { name: 'unknown top-level key', yaml: `${MINIMAL}metrics: {}\n`, path: 'metrics', message: /^unknown key; expected one of: listen, upstream/ },
  {
    name: 'unknown nested key, with a suggestion',
    yaml: `${MINIMAL.replace('listen:\n', 'listen:\n  adress: 127.0.0.1:9443\n')}`,
    path: 'listen.adress',
    message: /^unknown key; did you mean "address"\?$/,
  },
  { name: 'a kube AuthenticationConfiguration key at the top', yaml: `${MINIMAL}jwt: []\n`, path: 'jwt', message: /belongs at authentication\.jwt/ },
  { name: 'missing upstream.url', yaml: `${LISTEN}upstream:\n  caFile: ca.crt\n`, path: 'upstream.url', message: /^required: where requests are forwarded.*\(or set upstream\.kubeconfig\)$/ },
  { name: 'missing upstream section', yaml: LISTEN, path: 'upstream', message: /^required: where requests are forwarded \(upstream.url\), or routes/ },
  { name: 'bad URL', yaml: `${LISTEN}upstream:\n  url: 10.0.0.1:6443\n`, path: 'upstream.url', message: /expected an absolute https URL/ },
  { name: 'URL with a path', yaml: `${LISTEN}upstream:\n  url: https://10.0.0.1:6443/k8s\n`, path: 'upstream.url', message: /^a path is not supported/ },
  { name: 'URL with credentials', yaml: `${LISTEN}upstream:\n  url: https://admin:pw@10.0.0.1:6443\n`, path: 'upstream.url', message: /user name or password/ },
  {
    name: 'bad duration',
    yaml: MINIMAL.replace('listen:\n', 'listen:\n  headerTimeout: 10 minutes\n'),
    path: 'listen.headerTimeout',
    message: /not a duration: "10 minutes"; write it like 30s/,
  },
  { name: 'a number for a duration', yaml: MINIMAL.replace('listen:\n', 'listen:\n  headerTimeout: 10\n'), path: 'listen.headerTimeout', message: /bare number has no unit/ },
  {
    name: 'header timeout longer than the request timeout',
    yaml: MINIMAL.replace('listen:\n', 'listen:\n  headerTimeout: 90s\n'),
    path: 'listen.headerTimeout',
    message: /must not be longer than listen\.bodyTimeout/,
  },
  { name: 'bad enum', yaml: `${MINIMAL}audit: { format: xml }\n`, path: 'audit.format', message: /must be one of "combined", "json"; got "xml"/ },
  { name: 'YAML 1.1 boolean', yaml: `${MINIMAL}authentication: { allowImpersonationHeaders: yes }\n`, path: 'authentication.allowImpersonationHeaders', message: /expected true or false, got "yes"/ },
  { name: 'port out of range', yaml: MINIMAL.replace('listen:\n', 'listen:\n  address: 127.0.0.1:70000\n'), path: 'listen.address', message: /between 0 and 65535/ },
  {
    name: 'missing file, named by its resolved path',
    yaml: MINIMAL.replace('certFile: tls.crt', 'certFile: certs/missing.crt'),
    path: 'listen.tls.certFile',
    message: (dir) => new RegExp(`^file not found: ${escape(join(dir, 'certs/missing.crt'))} \\(paths are relative to the config file's folder\\)$`),
  },
  { name: 'a folder where a file belongs', yaml: MINIMAL.replace('certFile: tls.crt', 'certFile: .'), path: 'listen.tls.certFile', message: /is a folder, expected a file/ },
  { name: 'cert without key', yaml: `${MINIMAL}  clientCertFile: client.crt\n`, path: 'upstream.clientKeyFile', message: /required when clientCertFile is set/ },
  { name: 'key without cert', yaml: `${MINIMAL}  clientKeyFile: client.key\n`, path: 'upstream.clientCertFile', message: /required when clientKeyFile is set/ },
  {
    name: 'http upstream on a non-loopback host',
    yaml: `${LISTEN}upstream:\n  url: http://10.0.0.1:8080\n`,
    path: 'upstream.url',
    message: /http:\/\/ is refused for 10\.0\.0\.1: the identity headers would cross the network in clear text.*act as any user/,
  },
  {
    name: 'TLS settings on an http upstream',
    yaml: `${LISTEN}upstream:\n  url: http://127.0.0.1:8080\n  caFile: ca.crt\n`,
    path: 'upstream.caFile',
    message: /has no effect with an http:\/\/ upstream/,
  },
  {
    name: 'empty audiences',
    yaml: MINIMAL + jwt('{ issuer: { url: "https://idp.example.com", audiences: [] }, claimMappings: { username: { claim: email, prefix: "" } } }'),
    path: 'authentication.jwt[0].issuer.audiences',
    message: /at least one audience/,
  },
  {
    name: 'duplicate issuer URLs',
    yaml: MINIMAL + jwt(entry('https://idp.example.com'), entry('https://other.example.com'), entry('https://idp.example.com')),
    path: 'authentication.jwt[2].issuer.url',
    message: /same issuer\.url as authentication\.jwt\[0\]/,
  },
  {
    name: 'username mapping without prefix',
    yaml: MINIMAL + jwt(entry('https://idp.example.com', 'username: { claim: email }')),
    path: 'authentication.jwt[0].claimMappings.username.prefix',
    message: /^prefix is required when claim is set\. It can be set to an empty string to disable prefixing/,
  },
  // kube's validation.go, with its messages: one row per rule.
  ...(
    [
      ['a CEL syntax error names the expression and the position', 'username: { expression: "claims.sub +" }', 'claimMappings.username.expression', /^"claims\.sub \+": compilation failed: .* at line 1, column 13$/],
      ['an email username must look at email_verified', 'username: { expression: "claims.email" }', 'claimMappings.username.expression', /^claims\.email_verified must be used in claimMappings\.username\.expression/],
      ['claim and expression both set', 'username: { claim: sub, prefix: "", expression: "claims.sub" }', 'claimMappings.username', /^claim and expression can't both be set$/],
      ['neither claim nor expression', 'username: { prefix: "" }', 'claimMappings.username', /^claim or expression is required$/],
      ['prefix with an expression', 'username: { expression: "claims.sub", prefix: "x:" }', 'claimMappings.username.prefix', /^may not be specified when expression is set$/],
      ['uid claim and expression', 'username: { claim: sub, prefix: "" }, uid: { claim: sub, expression: "claims.sub" }', 'claimMappings.uid', /^claim and expression can't both be set$/],
      ['extra key not domain-prefixed', 'username: { claim: sub, prefix: "" }, extra: [{ key: tenant, valueExpression: "claims.t" }]', 'claimMappings.extra[0].key', /must be a domain-prefixed path \(such as "acme\.io\/foo"\)/],
      ['extra key upper case', 'username: { claim: sub, prefix: "" }, extra: [{ key: example.com/Tenant, valueExpression: "claims.t" }]', 'claimMappings.extra[0].key', /^must be lowercase$/],
      ['extra key reserved', 'username: { claim: sub, prefix: "" }, extra: [{ key: kubernetes.io/x, valueExpression: "claims.t" }]', 'claimMappings.extra[0].key', /reserved for Kubernetes use/],
      ['extra without valueExpression', 'username: { claim: sub, prefix: "" }, extra: [{ key: example.com/t }]', 'claimMappings.extra[0].valueExpression', /^required$/],
    ] as const
  ).map(([name, mappings, path, message]) => ({ name, yaml: MINIMAL + jwt(entry('https://idp.example.com', mappings)), path: `authentication.jwt[0].${path}`, message })),
  ...(
    [
      ['a claim rule with both forms', '[{ claim: hd, requiredValue: x, expression: "true" }]', 'claimValidationRules[0]', /^claim and expression can't both be set$/],
      ['a claim rule with a message', '[{ claim: hd, requiredValue: x, message: m }]', 'claimValidationRules[0].message', /^may not be specified when claim is set$/],
      ['a claim rule expression that is not bool', '[{ expression: "claims.hd" }]', 'claimValidationRules[0].expression', /must evaluate to bool$/],
      ['a claim rule expression with requiredValue', '[{ expression: "claims.hd == \'x\'", requiredValue: x }]', 'claimValidationRules[0].requiredValue', /^may not be specified when expression is set$/],
    ] as const
  ).map(([name, rules, path, message]) => ({
    name,
    yaml: MINIMAL + jwt(entry('https://idp.example.com').replace(/ }$/, `, claimValidationRules: ${rules} }`)),
    path: `authentication.jwt[0].${path}`,
    message,
  })),
  {
    name: 'a user rule over an unknown field',
    yaml: MINIMAL + jwt(entry('https://idp.example.com').replace(/ }$/, ', userValidationRules: [{ expression: "user.nickname == \'x\'" }] }')),
    path: 'authentication.jwt[0].userValidationRules[0].expression',
    message: /compilation failed/,
  },
  {
    name: 'a too expensive expression',
    yaml: MINIMAL + jwt(entry('https://idp.example.com', 'username: { claim: sub, prefix: "" }, groups: { expression: "claims.a.filter(x, claims.b.exists(y, x == y))" }')),
    path: 'authentication.jwt[0].claimMappings.groups.expression',
    message: /too expensive/,
  },
  {
    name: 'discoveryURL equal to url',
    yaml: MINIMAL + jwt(entry('https://idp.example.com', undefined, ', discoveryURL: "https://idp.example.com/"')),
    path: 'authentication.jwt[0].issuer.discoveryURL',
    message: /^discoveryURL must be different from URL$/,
  },
  {
    name: 'an inline CA that holds no certificate',
    yaml: MINIMAL + jwt(entry('https://idp.example.com', undefined, ', certificateAuthority: "not a pem"')),
    path: 'authentication.jwt[0].issuer.certificateAuthority',
    message: /^data does not contain any valid RSA or ECDSA certificates$/,
  },
  {
    name: 'both certificateAuthority and certificateAuthorityFile',
    yaml: MINIMAL + jwt(entry('https://idp.example.com', undefined, ', certificateAuthority: x, certificateAuthorityFile: idp-ca.crt')),
    path: 'authentication.jwt[0].issuer.certificateAuthorityFile',
    message: /not both/,
  },
  {
    name: 'one header name in two roles',
    yaml: `${MINIMAL}  identityHeaders: { user: X-Remote-User, group: x-remote-user }\n`,
    path: 'upstream.identityHeaders.group',
    message: /already used by identityHeaders\.user/,
  },
  {
    name: 'an identity header the proxy strips itself, spelt with underscores',
    yaml: `${MINIMAL}  identityHeaders: { user: X_Real_IP }\n`,
    path: 'upstream.identityHeaders.user[0]',
    message: /handled by the proxy itself/,
  },
  { name: 'zero handshake timeout', yaml: MINIMAL.replace('listen:\n', 'listen:\n  handshakeTimeout: 0s\n'), path: 'listen.handshakeTimeout', message: /must be more than 0/ },
  { name: 'missing audit folder', yaml: `${MINIMAL}audit: { path: logs/audit.log }\n`, path: 'audit.path', message: (dir) => new RegExp(`^folder not found: ${escape(join(dir, 'logs'))}`) },
  { name: 'not YAML at all', yaml: 'listen:\n  tls: [unclosed\n', path: '', message: /^not valid YAML at line \d+, column \d+: / },
  { name: 'a duplicated key', yaml: `${MINIMAL}upstream: {}\n`, path: '', message: /^not valid YAML at line 5, column 1: Map keys must be unique/ },
  { name: 'YAML that is not a mapping', yaml: '- listen\n- upstream\n', path: '', message: /^expected a mapping of keys .* got a list$/ },
  { name: 'empty file', yaml: '# nothing yet\n', path: '', message: /^the file is empty; write at least listen\.tls\.certFile, listen\.tls\.keyFile and upstream\.url \(or routes\)/ },
  {
    name: 'listen.address == healthAddress',
    yaml: MINIMAL.replace('listen:\n', 'listen:\n  address: 127.0.0.1:9000\n  healthAddress: 127.0.0.1:9000\n'),
    path: 'listen.healthAddress',
    message: /^must differ from listen\.address \(127\.0\.0\.1:9000\)/,
  },
  {
    name: 'health port shared with an every-address listener',
    yaml: MINIMAL.replace('listen:\n', 'listen:\n  address: ":9000"\n  healthAddress: 127.0.0.1:9000\n'),
    path: 'listen.healthAddress',
    message: /must differ/,
  },
  // routes[]: the SSO gateway's mistakes, each at its key.
  ...(
    [
      ['two routes with the same host and prefix (a trailing slash is the same prefix)', ['{ host: a.example.com, pathPrefix: /x, upstream: { url: "https://10.0.0.1" } }', '{ host: a.example.com, pathPrefix: /x/, upstream: { url: "https://10.0.0.2" } }'], 'routes[1].pathPrefix', /^routes\[0\] has the same host and path prefix; merge them or tell them apart$/],
      ['a route without an upstream', ['{ host: a.example.com }'], 'routes[0].upstream', /^required/],
      ['a rule on a claim about the token, not the person', ['{ host: a.example.com, upstream: { url: "https://10.0.0.1" }, allow: { claims: { exp: "1" } } }'], 'routes[0].allow.claims.exp', /^exp is about the token, not the person/],
      ['a rule on something that is no claim name', ['{ host: a.example.com, upstream: { url: "https://10.0.0.1" }, allow: { claims: { "a b": x } } }'], 'routes[0].allow.claims.a b', /^is not a claim name/],
      ['a public route with a rule', ['{ host: a.example.com, upstream: { url: "https://10.0.0.1" }, public: true, allow: { groups: [g] } }'], 'routes[0].allow', /^a public route lets everyone in; remove allow, or public$/],
      ['a host with a port', ['{ host: "a.example.com:8443", upstream: { url: "https://10.0.0.1" } }'], 'routes[0].host', /^expected a host name such as finance\.example\.com or \*\.example\.com \(no port, no scheme\)$/],
      ['two routes of one name', ['{ name: app, host: a.example.com, upstream: { url: "https://10.0.0.1" } }', '{ name: app, host: b.example.com, upstream: { url: "https://10.0.0.1" } }'], 'routes[1].name', /^routes\[0\] is named app already$/],
      ['no routes at all', [], 'routes', /^list at least one route, or use the top-level upstream$/],
    ] as const
  ).map(([name, list, path, message]) => ({ name: `routes: ${name}`, yaml: `${LISTEN}routes:${list.length ? list.map((r) => `\n  - ${r}`).join('') : ' []'}\n`, path, message })),
  { name: 'routes: routes beside upstream', yaml: `${MINIMAL}routes:\n  - { host: a.example.com, upstream: { url: "https://10.0.0.1" } }\n`, path: 'routes', message: /^set upstream \(one upstream for everything\) or routes, not both/ },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const { err, dir } = await loadFailing(t, row.yaml);
    const message = typeof row.message === 'function' ? row.message(dir) : row.message;
    const found = err.problems.find((p) => p.path === row.path);
    t.ok(found, `a problem at "${row.path}"; got ${JSON.stringify(err.problems)}`);
    t.match(found?.message, message);
  });
}

t.test('an unreadable config file', async (t) => {
  const dir = t.testdir({});
  const err = await loadConfig(join(dir, 'nope.yaml')).catch((e: unknown) => e);
  t.ok(err instanceof ConfigError);
  t.match((err as ConfigError).problems, [{ path: '', message: /^cannot read .*nope\.yaml: ENOENT$/ }]);
});

t.test('several problems are reported together, grouped by section', async (t) => {
  const yaml = `listen:
  adress: 127.0.0.1:9443
  tls: { certFile: missing.crt, keyFile: tls.key }
upstream:
  url: http://10.0.0.1:8080
authentication:
  allowImpersonationHeaders: "no"
audit:
  format: xml
`;
  const { err, dir } = await loadFailing(t, yaml);
  t.same(
    err.problems.map((p: ConfigProblem) => p.path),
    ['listen.adress', 'listen.tls.certFile', 'upstream.url', 'authentication.allowImpersonationHeaders', 'audit.format'],
  );
  const text = formatConfigError(err, 'config.yaml').split('\n');
  t.equal(text[0], 'config.yaml: 5 problems');
  t.equal(text[1], '  listen.adress: unknown key; did you mean "address"?');
  t.equal(text[2], `  listen.tls.certFile: file not found: ${join(dir, 'missing.crt')} (paths are relative to the config file's folder)`);
  t.match(err.message, /^invalid configuration:\n {2}listen\.adress: /);
});

t.test('a good config loads with defaults applied, paths absolute, and frozen', async (t) => {
  const dir = t.testdir({ ...FILES, logs: {} });
  const file = join(dir, 'config.yaml');
  const mappings = 'username: { claim: email, prefix: "" }, groups: { claim: groups, prefix: "oidc:" }';
  writeFileSync(
    file,
    `${MINIMAL}  caFile: ca.crt
  clientCertFile: client.crt
  clientKeyFile: ${join(dir, 'client.key')}
${jwt(entry('https://idp.example.com', mappings, ', certificateAuthorityFile: idp-ca.crt'))}audit:
  path: logs/audit.log
`,
  );

  const config = await loadConfig(file);
  t.match(config, {
    listen: {
      address: '127.0.0.1:8443',
      healthAddress: '127.0.0.1:8081',
      headerTimeout: 20_000,
      maxHeaderBytes: 32_768,
      tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') },
    },
    upstream: {
      caFile: join(dir, 'ca.crt'),
      clientCertFile: join(dir, 'client.crt'),
      clientKeyFile: join(dir, 'client.key'),
      responseTimeout: 60_000,
      connections: undefined,
    },
    authentication: { allowImpersonationHeaders: false, tokenCacheTTL: 10_000, tokenCacheMaxEntries: 10_000 },
    audit: { path: join(dir, 'logs/audit.log'), format: 'combined' },
    log: { level: 'info' },
  });
  t.same(config.upstream!.identityHeaders, { user: ['X-Remote-User'], group: ['X-Remote-Group'], extraPrefix: ['X-Remote-Extra-'], uid: ['X-Remote-Uid'] });
  const [issuer] = config.authentication.jwt;
  t.equal(issuer?.issuer.certificateAuthorityFile, join(dir, 'idp-ca.crt'));
  t.same(issuer?.claimValidationRules, []);
  t.equal(issuer?.jwksRefetchInterval, 2_000);

  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.upstream!.identityHeaders.user));
  t.ok(Object.isFrozen(issuer?.issuer.audiences));
  t.throws(() => {
    (config.listen as { address: string }).address = '0.0.0.0:1';
  }, TypeError);
});

t.test('an http upstream on loopback, and port 0 for both listeners, are fine', async (t) => {
  const dir = t.testdir(FILES);
  const config = parseConfig(
    { listen: { address: '127.0.0.1:0', healthAddress: '127.0.0.1:0', tls: { certFile: 'tls.crt', keyFile: 'tls.key' } }, upstream: { url: 'http://[::1]:8080' } },
    dir,
  );
  t.equal(config.upstream!.url, 'http://[::1]:8080');
});

t.test('parseConfig can skip the file checks, and still resolves paths', async (t) => {
  const config = parseConfig({ listen: { tls: { certFile: 'no.crt', keyFile: '/abs/no.key' } }, upstream: { url: 'https://10.0.0.1:6443' } }, '/etc/kfp', {
    checkFiles: false,
  });
  t.equal(config.listen.tls.certFile, '/etc/kfp/no.crt');
  t.equal(config.listen.tls.keyFile, '/abs/no.key');
  t.throws(() => parseConfig({ listen: { tls: { certFile: 'no.crt', keyFile: 'no.key' } }, upstream: { url: 'https://10.0.0.1:6443' } }, '/etc/kfp'), ConfigError);
});

t.test("HTTP/2 upstream: auto for kube-apiserver (the top-level upstream), off for a route's application unless it says so", async (t) => {
  const listen = { tls: { certFile: 'no.crt', keyFile: 'no.key' } };
  const kube = parseConfig({ listen, upstream: { url: 'https://10.0.0.1:6443' } }, '/etc/kfp', { checkFiles: false });
  t.equal(kube.upstream!.http2, 'auto');
  const gateway = parseConfig(
    {
      listen,
      routes: [
        { host: 'wiki.example.com', upstream: { url: 'https://10.0.0.2' } },
        { host: 'grpc.example.com', upstream: { url: 'https://10.0.0.3', http2: 'auto' } },
      ],
    },
    '/etc/kfp',
    { checkFiles: false },
  );
  t.same(gateway.routes!.map((r) => r.upstream.http2), ['off', 'auto']);
});
