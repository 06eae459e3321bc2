// Attack class: header names a server downstream normalises. Behind the proxy, WSGI
// and CGI (Django, Flask, PHP) map both `X-Remote-User` and `X_Remote_User` to
// HTTP_X_REMOTE_USER, and nginx passes underscores on with `underscores_in_headers on`;
// a proxy that strips only the dash spelling lets an authenticated client set the
// identity, the impersonation target or the client address the application reads.
// oauth2-proxy CVE-2025-64484 (GHSA-vjrc-mh2v-45x6).
//
// Every name the proxy protects is compared with `_` folded to `-`, in any case: the
// upstream's raw header lines hold no other spelling of an identity, impersonation or
// forwarding header than the lines the proxy set itself.
import t from 'tap';
import { rawRequest } from '../kube/helpers/raw-http.js';
import { startStack, untilReady } from '../helpers/stack.js';

/** Headers only the proxy may set, as the test names them (folded: lower case, `-` for `_`). */
const PROTECTED = [/^x-remote-(user|group|uid)$/, /^x-remote-extra-/, /^x-auth-user$/, /^x-extra-/, /^impersonate-/, /^x-forwarded-/, /^forwarded$/, /^x-real-ip$/, /^audit-id$/];
const fold = (name: string) => name.toLowerCase().replaceAll('_', '-');
const isProtected = (name: string) => PROTECTED.some((re) => re.test(fold(name)));

t.test('underscore spellings never reach the upstream', async (t) => {
  const stack = await startStack(t, {
    // Aliases and a second extra prefix: every one must be stripped whatever its spelling.
    configure: (c) => ({
      ...c,
      upstream: { ...c.upstream, identityHeaders: { user: ['X-Remote-User', 'X-Auth-User'], group: ['X-Remote-Group'], uid: ['X-Remote-Uid'], extraPrefix: ['X-Remote-Extra-', 'X-Extra-'] } },
    }),
  });
  await untilReady(stack.proxy);
  const token = await stack.mint({ sub: 'mallory', email: 'mallory@example.com', groups: ['guests'] });
  const { host } = new URL(stack.proxy.url);
  const smuggled = [
    'X_Remote_User: admin',
    'x_remote_user: admin',
    'X-Remote_User: admin',
    'X_REMOTE_GROUP: system:masters',
    'X_Remote_Uid: 0',
    'X_Remote_Extra_Scopes: cluster-admin',
    'x-remote_extra-scopes: cluster-admin',
    'X_Auth_User: admin',
    'X_Extra_Team: red',
    'X_Forwarded_For: 203.0.113.9',
    'X_Forwarded_Host: evil.example',
    'X_Forwarded_Proto: http',
    'x_forwarded_prefix: /admin',
    'X_Real_IP: 203.0.113.9',
    'Audit_ID: forged',
  ];

  const res = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/debug/headers', [...smuggled, `Authorization: Bearer ${token}`, ...smuggled]);
  t.equal(res.status, 200, 'answered');
  const seen = stack.upstream.seen.find((s) => s.auditId === res.header('audit-id'));
  t.ok(seen, 'the request reached the upstream');
  t.match(seen!.user, { username: 'mallory@example.com', uid: 'mallory', groups: ['oidc:guests'] }, "the identity is the token's");

  const lines: [string, string][] = [];
  for (let i = 0; i < seen!.rawHeaders.length; i += 2) lines.push([seen!.rawHeaders[i], seen!.rawHeaders[i + 1]]);
  const protectedLines = lines.filter(([name]) => isProtected(name)).map(([name, value]) => `${name}: ${value}`);
  t.same(
    protectedLines.sort(),
    [
      `Audit-ID: ${res.header('audit-id')}`,
      `X-Forwarded-For: 127.0.0.1`,
      `X-Forwarded-Host: ${host}`,
      'X-Forwarded-Proto: https',
      'X-Remote-Group: oidc:guests',
      'X-Remote-Uid: mallory',
      'X-Remote-User: mallory@example.com',
    ].sort(),
    'only the lines the proxy set, in the dash spelling',
  );
});

t.test('Impersonate_* is refused as Impersonate-* is, before the upstream', async (t) => {
  const stack = await startStack(t);
  await untilReady(stack.proxy);
  const token = await stack.mint();
  for (const line of ['Impersonate_User: admin', 'impersonate_group: system:masters', 'IMPERSONATE_UID: 0', 'Impersonate_Extra_Scopes: all', 'Impersonate-Extra_Scopes: all']) {
    const before = stack.upstream.seen.length;
    const res = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/debug/headers', [`Authorization: Bearer ${token}`, line]);
    t.equal(res.status, 403, line);
    t.match(JSON.parse(res.body), { kind: 'Status', reason: 'Forbidden', message: 'impersonation headers are not allowed through this proxy' }, line);
    t.equal(stack.upstream.seen.length, before, `${line}: nothing reached the upstream`);
  }
});
