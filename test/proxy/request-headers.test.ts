// The header rules, stage by stage, as a table: what a client sends, what the upstream must see.
import t from 'tap';
import type { Identity } from '../../src/request/identity.js';
import { encodeExtraKey } from '../../src/proxy/identity-headers.js';
import { hasImpersonationHeaders, headerRules, upstreamHeaders } from '../../src/proxy/request-headers.js';

const names = { user: ['X-Remote-User'], group: ['X-Remote-Group'], extraPrefix: ['X-Remote-Extra-'], uid: ['X-Remote-Uid'] };
const rules = headerRules(names, false);
const facts = { requestId: 'rid-1', clientAddress: '192.0.2.7', host: 'proxy.example.com', proto: 'https' as const };
const alice: Identity = {
  username: 'alice@example.com',
  uid: 'u-1',
  groups: ['oidc:dev', 'oidc:a,b'],
  extra: { 'example.com/team': ['blue', 'green'] },
  authMethod: 'jwt',
};

/** Header lines as [lower-case name, value] pairs, for easy assertions. */
function lines(raw: string[], identity: Identity | null = alice, r = rules, f: typeof facts & { upgrade?: string } = facts) {
  const result = upstreamHeaders(raw, identity ?? undefined, f, r);
  if (!result.ok) throw new Error(`refused: ${result.field}`);
  const out: [string, string][] = [];
  for (let i = 0; i < result.headers.length; i += 2) out.push([result.headers[i].toLowerCase(), result.headers[i + 1]]);
  return out;
}
const values = (ls: [string, string][], name: string) => ls.filter(([n]) => n === name).map(([, v]) => v);

t.test('client identity headers are stripped in every casing and duplicate', async (t) => {
  const smuggled = [
    'X-Remote-User', 'mallory',
    'x-remote-user', 'mallory',
    'X-REMOTE-USER', 'mallory',
    'x-ReMoTe-GrOuP', 'system:masters',
    'X-Remote-Group', 'system:masters',
    'X-Remote-Uid', 'evil',
    'X-Remote-Extra-Scopes', 'all',
    'x-remote-extra-example.com%2Fteam', 'red',
    'Accept', 'application/json',
  ];
  const ls = lines(smuggled);
  t.same(values(ls, 'x-remote-user'), ['alice@example.com']);
  t.same(values(ls, 'x-remote-group'), ['oidc:dev', 'oidc:a,b'], 'one line per group, commas kept inside');
  t.same(values(ls, 'x-remote-uid'), ['u-1']);
  t.same(values(ls, 'x-remote-extra-scopes'), []);
  t.same(values(ls, 'x-remote-extra-example.com%2fteam'), ['blue', 'green'], 'extra key percent-encoded, one line per value');
  t.same(values(ls, 'accept'), ['application/json'], 'ordinary headers pass');
});

t.test('every configured alias is stripped; the first is set', async (t) => {
  const aliased = headerRules({ ...names, user: ['X-Remote-User', 'X-Forwarded-User'], extraPrefix: ['X-Remote-Extra-', 'X-Extra-'] }, false);
  const ls = lines(['X-Forwarded-User', 'mallory', 'x-extra-foo', 'bar'], alice, aliased);
  t.same(values(ls, 'x-forwarded-user'), []);
  t.same(values(ls, 'x-extra-foo'), []);
  t.same(values(ls, 'x-remote-user'), ['alice@example.com']);
});

t.test('Authorization, Host, X-Forwarded-* and Audit-ID from the client are replaced', async (t) => {
  const ls = lines([
    'Authorization', 'Bearer secret-token',
    'authorization', 'Basic Zm9vOmJhcg==',
    'Host', 'proxy.example.com',
    'X-Forwarded-For', '10.0.0.1',
    'X-Forwarded-Proto', 'http',
    'X-Forwarded-Host', 'evil.example.com',
    'Audit-ID', 'client-chosen',
  ]);
  t.same(values(ls, 'authorization'), []);
  t.same(values(ls, 'host'), [], 'undici sets the upstream Host');
  t.same(values(ls, 'x-forwarded-for'), ['192.0.2.7']);
  t.same(values(ls, 'x-forwarded-proto'), ['https']);
  t.same(values(ls, 'x-forwarded-host'), ['proxy.example.com']);
  t.same(values(ls, 'audit-id'), ['rid-1']);
});

t.test('hop-by-hop headers and those named in Connection are dropped', async (t) => {
  const ls = lines([
    'Connection', 'keep-alive, X-Secret-Hop',
    'connection', 'x-other-hop',
    'Keep-Alive', 'timeout=5',
    'TE', 'trailers',
    'Trailer', 'x-t',
    'Transfer-Encoding', 'chunked',
    'Upgrade', 'websocket',
    'Proxy-Authorization', 'Basic x',
    'Proxy-Foo', 'bar',
    'X-Secret-Hop', '1',
    'X-Other-Hop', '2',
    'X-Kept', '3',
  ]);
  for (const name of ['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-foo', 'x-secret-hop', 'x-other-hop']) {
    t.same(values(ls, name), [], `${name} dropped`);
  }
  t.same(values(ls, 'x-kept'), ['3']);
});

t.test('an upgrade keeps its Upgrade value and gets Connection: Upgrade', async (t) => {
  const ls = lines(['Connection', 'Upgrade', 'Upgrade', 'SPDY/3.1', 'X-Stream-Protocol-Version', 'v4.channel.k8s.io'], alice, rules, {
    ...facts,
    upgrade: 'SPDY/3.1',
  });
  t.same(values(ls, 'connection'), ['Upgrade']);
  t.same(values(ls, 'upgrade'), ['SPDY/3.1']);
  t.same(values(ls, 'x-stream-protocol-version'), ['v4.channel.k8s.io']);
});

t.test('Impersonate-* headers', async (t) => {
  t.ok(hasImpersonationHeaders(['impersonate-user', 'x']));
  t.ok(hasImpersonationHeaders(['IMPERSONATE-GROUP', 'x']));
  t.ok(hasImpersonationHeaders(['Impersonate-Extra-Scopes', 'x']));
  t.notOk(hasImpersonationHeaders(['X-Impersonate-User', 'x']));
  t.same(values(lines(['Impersonate-User', 'admin']), 'impersonate-user'), [], 'dropped when not allowed (backstop)');
  const allowed = headerRules(names, true);
  t.same(values(lines(['Impersonate-User', 'admin'], alice, allowed), 'impersonate-user'), ['admin'], 'kept when allowed');
});

t.test('identity values a header cannot carry refuse the request', async (t) => {
  for (const [field, identity] of [
    ['username', { ...alice, username: 'alice\r\nX-Remote-Group: system:masters' }],
    ['username', { ...alice, username: 'alice\u0000' }],
    ['username', { ...alice, username: '' }],
    ['uid', { ...alice, uid: 'u\n1' }],
    ['groups', { ...alice, groups: ['ok', 'bad\u007f'] }],
    ['extra[k]', { ...alice, extra: { k: ['v\u0001v'] } }],
  ] as const) {
    const result = upstreamHeaders([], identity, facts, rules);
    t.same(result, { ok: false, problem: 'identity_not_representable', field }, JSON.stringify(identity));
  }
});

t.test('UTF-8 identities travel as UTF-8 bytes', async (t) => {
  const ls = lines([], { ...alice, username: 'josé@example.com', groups: ['équipe'] });
  t.equal(Buffer.from(values(ls, 'x-remote-user')[0], 'latin1').toString('utf8'), 'josé@example.com');
  t.equal(Buffer.from(values(ls, 'x-remote-group')[0], 'latin1').toString('utf8'), 'équipe');
});

t.test('no uid line when the identity has none', async (t) => {
  const ls = lines([], { username: 'bob', groups: ['g'], extra: {}, authMethod: 'jwt' });
  t.same(values(ls, 'x-remote-uid'), []);
  t.same(values(ls, 'x-remote-group'), ['g']);
  t.same(values(lines([], { ...alice, uid: '' }), 'x-remote-uid'), [], 'an empty uid is no uid, as in kube-apiserver');
});

// What Go's net/http would trim or refuse, and what kube-apiserver skips, is refused; the rest is carried as is
// (test/security/identity-header-value-alteration.test.ts proves each against the real kube-apiserver).
t.test('identity values: refused when kube-apiserver would read them differently, carried otherwise', async (t) => {
  for (const [field, identity] of [
    ['username', { ...alice, username: ' alice@example.com' }],
    ['username', { ...alice, username: 'alice@example.com\t' }],
    ['uid', { ...alice, uid: 'u-1 ' }],
    ['groups', { ...alice, groups: ['oidc:admins '] }],
    ['groups', { ...alice, groups: ['', 'g'] }],
    ['groups', { ...alice, groups: ['\ud800'] }],
    ['extra[k]', { ...alice, extra: { k: ['\tv'] } }],
    ['extra[k]', { ...alice, extra: { k: [] } }],
    ['extra[k\udc00]', { ...alice, extra: { 'k\udc00': ['v'] } }],
  ] as const) {
    const result = upstreamHeaders([], identity, facts, rules);
    t.same(result, { ok: false, problem: 'identity_not_representable', field }, JSON.stringify(identity));
  }
  const ls = lines([], { ...alice, username: 'a\tb  c', groups: ['g\th'], extra: { 'Team.Example.COM/Owner': ['x\ty', ''] } });
  t.same(values(ls, 'x-remote-user'), ['a\tb  c'], 'a tab and spaces inside are delivered by Go');
  t.same(values(ls, 'x-remote-group'), ['g\th']);
  t.same(values(ls, 'x-remote-extra-%54eam.%45xample.%43%4f%4d%2f%4fwner'), ['x\ty', ''], 'upper case as %XX; an empty extra value is kept by kube');
});

t.test('extra keys are percent-encoded as client-go does', async (t) => {
  t.equal(encodeExtraKey('example.com/team'), 'example.com%2Fteam');
  t.equal(encodeExtraKey('authentication.kubernetes.io/credential-id'), 'authentication.kubernetes.io%2Fcredential-id');
  t.equal(encodeExtraKey('100%'), '100%25', '% itself is encoded');
  t.equal(encodeExtraKey('a b'), 'a%20b');
  t.equal(encodeExtraKey('clé'), 'cl%C3%A9', 'non-ASCII: each UTF-8 byte');
  t.equal(encodeExtraKey("!#$&'*+-.^_`|~09az"), "!#$&'*+-.^_`|~09az", 'token characters stay');
  t.equal(encodeExtraKey('Team'), '%54eam', 'upper case is encoded: kube-apiserver lower-cases the key before unescaping it');
});

t.test('the session cookie is removed from Cookie; other cookies pass', async (t) => {
  const withSession = headerRules(names, false, '_kfp_session');
  const ls = lines(['Cookie', '_kfp_session=s%3Aabc.sig; app=1', 'cookie', 'x=2;_kfp_session=again ; y=3', 'Cookie', '_kfp_session=only'], alice, withSession);
  t.same(values(ls, 'cookie'), ['app=1; x=2; y=3'], 'every occurrence removed, the rest joined into one line');
  t.same(values(lines(['Cookie', '_kfp_session=only']), 'cookie'), ['_kfp_session=only'], 'kept without browser login');
  t.same(values(lines(['Cookie', '_kfp_session=only'], alice, withSession), 'cookie'), [], 'a Cookie emptied by the removal is dropped');
  t.same(values(lines(['Cookie', '_kfp_session_other=1'], alice, withSession), 'cookie'), ['_kfp_session_other=1'], 'only the exact name');
  t.same(values(lines(['Cookie', '_kfp_session=1']), 'cookie'), ['_kfp_session=1'], 'untouched without browser login');
});

t.test('HTTP/2: pseudo-headers never reach the upstream, and split cookies are joined into one line', async (t) => {
  const ls = lines([':method', 'GET', ':path', '/api', ':authority', 'proxy.example.com', ':scheme', 'https', 'cookie', 'a=1', 'accept', '*/*', 'cookie', 'b=2']);
  t.same(ls.filter(([n]) => n.startsWith(':')), [], 'no pseudo-header');
  t.same(values(ls, 'cookie'), ['a=1; b=2'], 'one Cookie line, as HTTP/1.1 requires (RFC 9113 section 8.2.3)');
  t.same(values(ls, 'accept'), ['*/*']);
});

// Names a downstream server normalises (WSGI/CGI read `X_Remote_User` as `X-Remote-User`): oauth2-proxy CVE-2025-64484.
t.test('protected names are compared with _ folded to -, in any case', async (t) => {
  const aliased = headerRules({ ...names, user: ['X-Remote-User', 'X-Auth-User'], extraPrefix: ['X-Remote-Extra-', 'X-Extra-'] }, false);
  const smuggled = ['X_Remote_User', 'x-remote_group', 'X_REMOTE_UID', 'X_Remote_Extra_Scopes', 'x_auth_user', 'X_Extra_Team', 'Impersonate_User', 'X_Forwarded_For', 'X_Real_IP', 'Audit_ID', 'Transfer_Encoding', 'Proxy_Authorization'];
  const ls = lines(smuggled.flatMap((n) => [n, 'forged']), alice, aliased);
  t.same(ls.filter(([, v]) => v === 'forged'), [], 'none of them is forwarded');
  t.ok(hasImpersonationHeaders(['Impersonate_User', 'admin']), 'Impersonate_User is an impersonation header (the pipeline answers 403)');
  t.ok(hasImpersonationHeaders(['impersonate-extra_scopes', 'x']));
  t.notOk(hasImpersonationHeaders(['X_Impersonate_User', 'x']));
  t.same(values(lines(['X_Kept', '1']), 'x_kept'), ['1'], 'an unprotected underscore name passes');
  // When impersonation is allowed, only the spelling every server reads alike goes through.
  const allowed = lines(['Impersonate-User', 'admin', 'Impersonate_User', 'root'], alice, headerRules(names, true));
  t.same(allowed.filter(([n]) => n.startsWith('impersonate')), [['impersonate-user', 'admin']]);
});

t.test('forwarding headers the client sends are dropped; the proxy sets X-Forwarded-For/-Proto/-Host alone', async (t) => {
  const spoofed = [
    'Forwarded', 'X-Forwarded', 'Forwarded-For', 'X-Real-IP', 'X-Forwarded-For', 'X-Forwarded-Port', 'X-Forwarded-Prefix', 'X-Forwarded-Server', 'X-Forwarded-Uri',
    'X-Forwarded-Ssl', 'X-Forwarded-Scheme', 'X-Forwarded-Client-Cert', 'X-Client-IP', 'Client-IP', 'True-Client-IP',
    'X-Cluster-Client-IP', 'CF-Connecting-IP', 'Cf-Pseudo-IPv4', 'Fastly-Client-IP', 'X-0-Client-IP', 'X-AppEngine-User-IP', 'X-Original-Forwarded-For', 'X-Original-URL', 'X-Original-URI',
    'X-Rewrite-URL', 'X-Original-Host', 'X-Host',
  ];
  const ls = lines([...spoofed.flatMap((n) => [n, '203.0.113.9']), 'X-Forwarding-Note', 'kept', 'X-Realm', 'kept']);
  t.same(ls.filter(([, v]) => v === '203.0.113.9'), [], 'every one dropped');
  t.same(values(ls, 'x-forwarded-for'), ['192.0.2.7'], 'the client address alone, not appended to a chain');
  t.same(values(ls, 'x-forwarding-note'), ['kept'], 'a name that only starts alike passes');
  t.same(values(ls, 'x-realm'), ['kept']);
});

t.test('method overrides are dropped: an application must act on the method the proxy judged', async (t) => {
  const ls = lines(['X-HTTP-Method-Override', 'DELETE', 'X_HTTP_Method', 'DELETE', 'x-method-override', 'DELETE', 'X-Method', 'kept']);
  t.same(ls.filter(([, v]) => v === 'DELETE'), [], 'every spelling dropped');
  t.same(values(ls, 'x-method'), ['kept'], 'an unrelated name passes');
});

t.test('Expect is not forwarded: the proxy has met the expectation (and undici refuses to send one)', async (t) => {
  t.same(values(lines(['Expect', '100-continue', 'expect', '100-continue', 'Content-Length', '5']), 'expect'), []);
});

t.test('the WebSocket bearer subprotocol never reaches the upstream; other subprotocols keep their order', async (t) => {
  const bearer = 'base64url.bearer.authorization.k8s.io.dG9rZW4';
  const protocols = (raw: string[]) => values(lines(raw), 'sec-websocket-protocol');
  t.same(protocols(['Sec-WebSocket-Protocol', `${bearer}, v5.channel.k8s.io,v4.channel.k8s.io`]), ['v5.channel.k8s.io, v4.channel.k8s.io']);
  t.same(protocols(['Sec-WebSocket-Protocol', `v5.channel.k8s.io, ${bearer}`, 'sec-websocket-protocol', 'base.channel.k8s.io']), ['v5.channel.k8s.io', 'base.channel.k8s.io'], 'every line, each kept as a line');
  t.same(protocols(['Sec-WebSocket-Protocol', ` ${bearer} `, 'Sec-WebSocket-Protocol', 'v4.channel.k8s.io']), ['v4.channel.k8s.io'], 'a line left empty is dropped');
  t.same(protocols(['Sec-WebSocket-Protocol', `${bearer},${bearer}.second`]), [], 'every bearer entry, not just the first');
  t.same(protocols(['Sec_WebSocket_Protocol', bearer, 'Sec-WebSocket-Protocol', 'BASE64URL.Bearer.Authorization.K8S.io.dG9rZW4, v4.channel.k8s.io']), ['v4.channel.k8s.io'], 'in any spelling of name and prefix');
  t.same(protocols(['Sec-WebSocket-Protocol', 'v4.channel.k8s.io, base64url.bearer.authorization.k8s.io']), ['v4.channel.k8s.io, base64url.bearer.authorization.k8s.io'], 'the prefix alone (no dot, no token) is not a bearer entry');
});

t.test('Cookie: every cookie the proxy owns is removed (HeaderRules.ownsCookie, e.g. the login-state cookie)', async (t) => {
  const owns = (name: string) => name === '__Host-kfp-session' || name === '__Host-kfp-login';
  const withOwner = headerRules(names, false, '__Host-kfp-session', owns);
  const ls = lines(['Cookie', '__Host-kfp-login=state; app=1; __Host-kfp-session=s; __Host-kfp-login-x=2'], alice, withOwner);
  t.same(values(ls, 'cookie'), ['app=1; __Host-kfp-login-x=2']);
});

t.test('a passed-through token keeps the client credential, and only that', async (t) => {
  const ls = lines(
    [
      'Authorization', 'Bearer first',
      'authorization', 'Bearer second',
      'Sec-WebSocket-Protocol', 'v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.dG9rZW4',
      'X-Remote-User', 'mallory',
      'X-Remote-Group', 'system:masters',
      'X-Remote-Extra-Scopes', 'all',
    ],
    null, // no identity: passed through
  );
  t.same(values(ls, 'authorization'), ['Bearer first'], 'the line the proxy read, once');
  t.same(values(ls, 'sec-websocket-protocol'), ['v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.dG9rZW4'], 'kube-apiserver reads the bearer subprotocol itself');
  for (const name of ['x-remote-user', 'x-remote-group', 'x-remote-uid', 'x-remote-extra-scopes']) t.same(values(ls, name), [], `no ${name}`);
  t.same(values(ls, 'audit-id'), ['rid-1']);
});

t.test('an authenticated identity never carries the client Authorization', async (t) => {
  t.same(values(lines(['Authorization', 'Bearer token']), 'authorization'), []);
});

// upstream.identity: impersonation. The same rules, but the identity goes as Impersonate-* lines
// (kube-apiserver's impersonation filter), which the caller follows with the proxy's own credential.
const impersonating = headerRules(names, false, undefined, undefined, 'impersonation');
const impersonatingAllowed = headerRules(names, true, undefined, undefined, 'impersonation');

t.test('impersonation mode: the identity as Impersonate-* lines, one per group and extra value', async (t) => {
  const ls = lines(['Accept', 'application/json'], alice, impersonating);
  t.same(values(ls, 'impersonate-user'), ['alice@example.com']);
  t.same(values(ls, 'impersonate-group'), ['oidc:dev', 'oidc:a,b'], 'one line per group, commas kept inside');
  t.same(values(ls, 'impersonate-uid'), ['u-1']);
  t.same(values(ls, 'impersonate-extra-example.com%2fteam'), ['blue', 'green'], 'extra key encoded as client-go does');
  for (const name of ['x-remote-user', 'x-remote-group', 'x-remote-uid', 'x-remote-extra-example.com%2fteam']) t.same(values(ls, name), [], `no ${name}`);
  t.same(values(ls, 'authorization'), [], "no Authorization here: the pipeline adds the proxy's own");
  t.same(values(ls, 'accept'), ['application/json']);
  t.same(values(lines([], { ...alice, uid: '' }, impersonating), 'impersonate-uid'), [], 'no uid line without a uid');
  t.same(
    upstreamHeaders([], { ...alice, username: 'alice\r\nImpersonate-Group: system:masters' }, facts, impersonating),
    { ok: false, problem: 'identity_not_representable', field: 'username' },
    'a value a header cannot carry is refused here too',
  );
});

t.test('impersonation mode: every client Impersonate-* spelling is dropped when the proxy sends an identity, allowed or not', async (t) => {
  const smuggled = [
    'Impersonate-User', 'Impersonate-Group', 'Impersonate-Uid', 'Impersonate-Extra-Scopes', 'impersonate-user', 'IMPERSONATE-GROUP',
    'Impersonate_User', 'impersonate_group', 'Impersonate-Extra_Scopes', 'impersonate-extra-example.com%2fteam',
  ].flatMap((n) => [n, 'system:masters']);
  for (const [name, rules] of [['not allowed', impersonating], ['allowed (the pipeline has reviewed them)', impersonatingAllowed]] as const) {
    const ls = lines([...smuggled, 'X-Remote-User', 'system:admin'], alice, rules);
    t.same(ls.filter(([, v]) => v === 'system:masters' || v === 'system:admin'), [], `${name}: none forwarded`);
    t.same(values(ls, 'impersonate-user'), ['alice@example.com'], `${name}: one Impersonate-User, the proxy's`);
    t.same(values(ls, 'impersonate-group'), ['oidc:dev', 'oidc:a,b']);
    t.same(values(ls, 'impersonate-extra-scopes'), []);
    t.same(values(ls, 'impersonate-extra-example.com%2fteam'), ['blue', 'green'], `${name}: only the identity's own extra values`);
  }
});

t.test("impersonation mode, a passed-through token: the client's dashed Impersonate-* pass only when allowed", async (t) => {
  const raw = ['Authorization', 'Bearer client', 'Impersonate-User', 'bob', 'Impersonate-Group', 'devs', 'Impersonate_Uid', 'u-x'];
  const allowed = lines(raw, null, impersonatingAllowed);
  t.same(allowed.filter(([n]) => n.startsWith('impersonate')), [['impersonate-user', 'bob'], ['impersonate-group', 'devs']], 'kube-apiserver authorizes them against the token');
  t.same(values(allowed, 'authorization'), ['Bearer client']);
  const refused = lines(raw, null, impersonating);
  t.same(refused.filter(([n]) => n.startsWith('impersonate')), [], 'not allowed: none (the pipeline has answered 403 already)');
});

t.test('requestheader mode is unchanged by the new rules: allowed Impersonate-* still pass beside the identity', async (t) => {
  const ls = lines(['Impersonate-User', 'bob'], alice, headerRules(names, true, undefined, undefined, 'requestheader'));
  t.same(values(ls, 'impersonate-user'), ['bob']);
  t.same(values(ls, 'x-remote-user'), ['alice@example.com']);
});
