// Who the real kube-apiserver thinks the caller is, through the proxy: the
// mapped identity reaches it exactly, RBAC binds the prefixed groups, and
// nothing a client sends can change the identity.
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import t from 'tap';
import { startKube, startProxiedStack } from './helpers/kube-stack.js';
import { rawRequest } from './helpers/raw-http.js';

const cluster = await startKube(t);
if (cluster) {
  const stack = await startProxiedStack(t, cluster);
  const review = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
  const reviewBody = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  /** Who the apiserver says the caller of this raw request is (or the error status). */
  const whoamiRaw = async (lines: string[]) => {
    const res = await rawRequest(stack.proxy.url, stack.servingCA, 'POST', review, ['Content-Type: application/json', ...lines], reviewBody);
    return { res, userInfo: res.status === 201 ? JSON.parse(res.body).status.userInfo : undefined };
  };

  t.test('kubectl auth whoami shows the OIDC user exactly as mapped', async (t) => {
    const token = await stack.login();
    const claims = decodeJwt(token);
    const { code, stdout, stderr } = await stack.kubectl(await stack.kubeconfig(token), ['auth', 'whoami', '-o', 'json']);
    t.equal(code, 0, stderr);
    const expected: Record<string, unknown> = {
      username: 'demo@example.com',
      uid: 'demo',
      groups: ['oidc:developers', 'oidc:infrastructure', 'system:authenticated'],
    };
    if (typeof claims.jti === 'string') expected.extra = { 'authentication.kubernetes.io/credential-id': [`JTI=${claims.jti}`] };
    t.same(JSON.parse(stdout).status.userInfo, expected, 'kube adds only system:authenticated');
  });

  t.test('a token with a jti, odd groups and a non-ASCII name arrives byte for byte', async (t) => {
    const jti = `jti-${randomBytes(6).toString('hex')}`;
    const token = await stack.mint({
      jti,
      sub: 'ünï-42',
      email: 'zoë.ñandú@example.com',
      groups: ['infrastructure', 'a,b', 'with space', 'ütf-8', 'system:masters'],
    });
    const { code, stdout, stderr } = await stack.kubectl(await stack.kubeconfig(token), ['auth', 'whoami', '-o', 'json']);
    t.equal(code, 0, stderr);
    t.same(JSON.parse(stdout).status.userInfo, {
      username: 'zoë.ñandú@example.com',
      uid: 'ünï-42',
      // One header line per group: kube never splits "a,b"; the prefix keeps an IdP group from being system:masters.
      groups: ['oidc:infrastructure', 'oidc:a,b', 'oidc:with space', 'oidc:ütf-8', 'oidc:system:masters', 'system:authenticated'],
      extra: { 'authentication.kubernetes.io/credential-id': [`JTI=${jti}`] },
    });
  });

  t.test('RBAC: a RoleBinding for oidc:infrastructure grants one namespace only', async (t) => {
    for (const name of ['kfp-infra', 'kfp-other']) {
      t.equal((await cluster.admin('/api/v1/namespaces', { method: 'POST', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } })).status, 201);
    }
    const rbac = '/apis/rbac.authorization.k8s.io/v1/namespaces/kfp-infra';
    t.equal(
      (
        await cluster.admin(`${rbac}/roles`, {
          method: 'POST',
          body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'pod-reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }] },
        })
      ).status,
      201,
    );
    t.equal(
      (
        await cluster.admin(`${rbac}/rolebindings`, {
          method: 'POST',
          body: {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'RoleBinding',
            metadata: { name: 'infrastructure-pod-reader' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
            subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'oidc:infrastructure' }],
          },
        })
      ).status,
      201,
    );
    const demo = await stack.kubeconfig(await stack.login());
    const allowed = await stack.kubectl(demo, ['get', 'pods', '-n', 'kfp-infra']);
    t.equal(allowed.code, 0, allowed.stderr);
    t.match(allowed.stderr, /No resources found in kfp-infra namespace/);
    const elsewhere = await stack.kubectl(demo, ['get', 'pods', '-n', 'kfp-other']);
    t.not(elsewhere.code, 0);
    t.match(elsewhere.stderr, /Error from server \(Forbidden\): pods is forbidden: User "demo@example.com" cannot list resource "pods" in API group "" in the namespace "kfp-other"/);

    // Without the group, the same namespace is refused: the binding is by group, not by user.
    const developer = await stack.kubeconfig(await stack.mint({ email: 'dev@example.com', groups: ['developers'] }));
    const notInGroup = await stack.kubectl(developer, ['get', 'pods', '-n', 'kfp-infra']);
    t.not(notInGroup.code, 0);
    t.match(notInGroup.stderr, /User "dev@example.com" cannot list resource "pods"/);
    // kubectl auth can-i agrees, through the proxy (SelfSubjectAccessReview).
    const canI = await stack.kubectl(demo, ['auth', 'can-i', 'list', 'pods', '-n', 'kfp-infra']);
    t.equal(canI.stdout.trim(), 'yes');
  });

  t.test('client-sent X-Remote-* headers never change the identity, in any casing', async (t) => {
    const jti = `jti-${randomBytes(6).toString('hex')}`;
    const token = await stack.mint({ jti, sub: 'mallory', email: 'mallory@example.com', groups: ['guests'] });
    const mallory = {
      username: 'mallory@example.com',
      uid: 'mallory',
      groups: ['oidc:guests', 'system:authenticated'],
      extra: { 'authentication.kubernetes.io/credential-id': [`JTI=${jti}`] },
    };
    const base = [`Authorization: Bearer ${token}`];
    const { userInfo: plain } = await whoamiRaw(base);
    t.same(plain, mallory, 'the identity without smuggled headers');

    const casings = (name: string) => [name, name.toLowerCase(), name.toUpperCase(), name.replace(/-(.)/g, (_, c: string) => `-${c.toLowerCase()}`)];
    const smuggled: Record<string, string[]> = {
      user: casings('X-Remote-User').map((n) => `${n}: admin`),
      uid: casings('X-Remote-Uid').map((n) => `${n}: 0`),
      group: casings('X-Remote-Group').map((n) => `${n}: system:masters`),
      extra: [
        ...casings('X-Remote-Extra-Scopes').map((n) => `${n}: cluster-admin`),
        'X-Remote-Extra-authentication.kubernetes.io%2Fcredential-id: JTI=forged',
        'x-remote-extra-authentication.kubernetes.io%2fcredential-id: JTI=forged',
      ],
      // Before and after the real Authorization, duplicated, empty first value (kube takes the first non-empty user).
      order: ['X-Remote-User:', 'X-Remote-User: root', 'X-Remote-Group: system:masters', 'X-Remote-Group: system:masters'],
    };
    for (const [what, lines] of Object.entries(smuggled)) {
      const before = await whoamiRaw([...lines, ...base]);
      t.equal(before.res.status, 201, `${what}: answered`);
      t.same(before.userInfo, mallory, `${what}: sent before Authorization`);
      const after = await whoamiRaw([...base, ...lines]);
      t.same(after.userInfo, mallory, `${what}: sent after Authorization`);
    }
    const everything = Object.values(smuggled).flat();
    const all = await whoamiRaw([...everything, ...base, ...everything]);
    t.same(all.userInfo, mallory, 'all of them at once');

    // And the smuggled system:masters grants nothing: listing secrets cluster-wide is still forbidden.
    const secrets = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/api/v1/secrets', [...everything, ...base]);
    t.equal(secrets.status, 403, 'system:masters was not believed');
    t.match(JSON.parse(secrets.body).message, /User "mallory@example.com" cannot list resource "secrets"/);
  });

  t.test('header tricks: hop-by-hop lists, folded lines, underscores, smuggled requests in the body', async (t) => {
    const token = await stack.mint({ sub: 'mallory', email: 'mallory@example.com', groups: ['guests'] });
    const auth = `Authorization: Bearer ${token}`;
    const tricks: Record<string, string[]> = {
      // A client naming the identity headers as hop-by-hop, hoping the proxy drops its own after setting them.
      'Connection lists the identity headers': ['Connection: X-Remote-User, X-Remote-Group, X-Remote-Uid, Audit-ID', auth],
      'Connection lists Authorization': ['Connection: Authorization', auth],
      // Underscores: some servers (not Go's) fold them into dashes.
      underscores: ['X_Remote_User: admin', 'X_Remote_Group: system:masters', auth],
      // A header line folded into the previous one (obsolete line folding).
      'obs-fold': ['X-Note: a', ' X-Remote-User: admin', auth],
    };
    for (const [what, lines] of Object.entries(tricks)) {
      const { res, userInfo } = await whoamiRaw(lines);
      t.ok(res.status === 201 || res.status === 400, `${what}: answered ${res.status}`);
      if (res.status === 201) t.same(userInfo.username, 'mallory@example.com', `${what}: still mallory`);
      if (res.status === 201) t.same(userInfo.groups, ['oidc:guests', 'system:authenticated'], `${what}: still mallory's groups`);
    }
    // Identity headers in a chunked body's trailer section, and a body framed two ways at once (the classic
    // request-smuggling setup: if the proxy and kube-apiserver disagreed on where a body ends, the rest would be
    // read as a request of its own on the proxy's trusted connection).
    const hidden = 'GET /api/v1/secrets HTTP/1.1\r\nHost: x\r\nX-Remote-User: admin\r\nX-Remote-Group: system:masters\r\n\r\n';
    const chunk = `${reviewBody.length.toString(16)}\r\n${reviewBody}\r\n`;
    const framings: Array<[string, string[], string]> = [
      ['identity headers as chunked trailers', [auth, 'Content-Type: application/json', 'Transfer-Encoding: chunked', 'Trailer: X-Remote-User, X-Remote-Group'], `${chunk}0\r\nX-Remote-User: admin\r\nX-Remote-Group: system:masters\r\n\r\n`],
      ['Content-Length and Transfer-Encoding both', [auth, 'Content-Type: application/json', `Content-Length: ${chunk.length + 5}`, 'Transfer-Encoding: chunked'], `${chunk}0\r\n\r\n${hidden}`],
      ['a request hidden after a Content-Length body', [auth, 'Content-Type: application/json', `Content-Length: ${reviewBody.length + hidden.length}`], `${reviewBody}${hidden}`],
    ];
    for (const [what, lines, body] of framings) {
      const res = await rawRequest(stack.proxy.url, stack.servingCA, 'POST', review, lines, undefined, body);
      t.ok([201, 400].includes(res.status), `${what}: answered ${res.status}`);
      if (res.status === 201) t.same(JSON.parse(res.body).status.userInfo.groups, ['oidc:guests', 'system:authenticated'], `${what}: still mallory`);
    }
  });

  t.test('client-sent Impersonate-* headers are refused by the proxy, in any casing, before the apiserver', async (t) => {
    const token = await stack.mint({ email: 'mallory@example.com', groups: ['guests'] });
    const ids: string[] = [];
    for (const line of [
      'Impersonate-User: admin',
      'impersonate-user: admin',
      'IMPERSONATE-USER: admin',
      'Impersonate-Group: system:masters',
      'impersonate-group: system:masters',
      'Impersonate-Uid: 0',
      'Impersonate-Extra-Scopes: all',
      'iMpErSoNaTe-ExTrA-scopes: all',
    ]) {
      const { res } = await whoamiRaw([`Authorization: Bearer ${token}`, line]);
      t.equal(res.status, 403, line);
      t.match(JSON.parse(res.body), { kind: 'Status', reason: 'Forbidden', message: 'impersonation headers are not allowed through this proxy' }, line);
      const id = res.header('audit-id');
      t.ok(id, 'the refusal carries the request id');
      ids.push(id!);
    }
    // A request that does reach the apiserver, so everything before it is in its audit log.
    const marker = await whoamiRaw([`Authorization: Bearer ${token}`]);
    const markerId = marker.res.header('audit-id')!;
    await cluster.auditEvent((e) => e.auditID === markerId);
    const reached = (await cluster.auditEvents()).filter((e) => ids.includes(e.auditID));
    t.same(reached, [], 'no refused request reached kube-apiserver');
  });

  t.test('a bad token is refused by the proxy and nothing reaches the apiserver', async (t) => {
    const marker = `kfp-bad-${randomBytes(6).toString('hex')}`;
    const expired = await stack.mint({ exp: Math.floor(Date.now() / 1000) - 120, iat: Math.floor(Date.now() / 1000) - 600 });
    const wrongAudience = await stack.mint({ aud: 'someone-else' });
    const tampered = `${(await stack.mint()).slice(0, -4)}AAAA`;
    const ids: string[] = [];
    for (const [what, token] of [
      ['not a JWT', 'not-a-jwt'],
      ['expired', expired],
      ['wrong audience', wrongAudience],
      ['bad signature', tampered],
    ] as const) {
      const kc = await stack.kubeconfig(token);
      const k = await stack.kubectl(kc, ['get', 'configmaps', '-n', marker]);
      t.not(k.code, 0, `${what}: kubectl fails`);
      t.match(k.stderr, /Unauthorized|must be logged in/, `${what}: kubectl says Unauthorized`);
      const raw = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', `/api/v1/namespaces/${marker}/configmaps`, [`Authorization: Bearer ${token}`]);
      t.equal(raw.status, 401, `${what}: 401`);
      t.equal(raw.header('www-authenticate'), 'Bearer realm="kube-front-proxy"', `${what}: answered by the proxy`);
      ids.push(raw.header('audit-id')!);
    }
    const none = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', `/api/v1/namespaces/${marker}/configmaps`, []);
    t.equal(none.status, 401, 'no token: 401');
    ids.push(none.header('audit-id')!);

    const ok = await stack.fetch('/version', { headers: { authorization: `Bearer ${await stack.mint()}` } });
    const okId = ok.headers['audit-id'] as string;
    await ok.body.text();
    await cluster.auditEvent((e) => e.auditID === okId);
    const events = await cluster.auditEvents();
    t.same(events.filter((e) => e.requestURI.includes(marker)), [], 'no audit event for the refused path');
    t.same(events.filter((e) => ids.includes(e.auditID)), [], 'no audit event with a refused request id');
    t.same(events.filter((e) => e.responseStatus?.code === 401), [], 'kube-apiserver never answered 401');
  });

  t.test("the apiserver's audit event carries the proxy's request id and the user it set", async (t) => {
    const token = await stack.login();
    const res = await stack.fetch('/api/v1/namespaces/kfp-infra/pods?limit=1', { headers: { authorization: `Bearer ${token}` } });
    t.equal(res.statusCode, 200, await res.body.text());
    const echoed = res.headers['audit-id'] as string;
    const line = await stack.proxyAudit().then((lines) => lines.find((l) => l.target === '/api/v1/namespaces/kfp-infra/pods?limit=1'));
    const proxyLine = line ?? (await stack.proxyAuditLine(echoed));
    t.equal(echoed, proxyLine.requestId, 'the Audit-Id kube-apiserver answered is the proxy request id');
    const event = await cluster.auditEvent((e) => e.auditID === proxyLine.requestId && e.stage === 'ResponseComplete');
    t.equal(event.requestURI, '/api/v1/namespaces/kfp-infra/pods?limit=1');
    t.equal(event.verb, 'list');
    t.same(event.user.username, 'demo@example.com');
    t.same(event.user.uid, 'demo');
    t.same(event.user.groups, ['oidc:developers', 'oidc:infrastructure', 'system:authenticated']);
    t.equal(event.responseStatus?.code, 200);
    t.equal(proxyLine.user, 'demo@example.com');
    t.equal(proxyLine.upstreamStatus, 200);

    // A client that sends its own Audit-ID does not choose the apiserver's: the proxy replaces it.
    const forged = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/version', [`Authorization: Bearer ${token}`, 'Audit-ID: forged-id', 'audit-id: forged-id-2']);
    const id = forged.header('audit-id')!;
    t.not(id, 'forged-id');
    t.not(id, 'forged-id-2');
    await stack.proxyAuditLine(id);
    t.equal((await cluster.auditEvent((e) => e.auditID === id)).requestURI, '/version');
  });

  // test/security/forwarding-header-spoofing.test.ts: kube-apiserver reads X-Forwarded-For, then X-Real-Ip, into sourceIPs.
  t.test("spoofed X-Real-IP, X-Forwarded-For and Forwarded never reach the audit event's sourceIPs", async (t) => {
    const token = await stack.mint({ email: 'mallory@example.com', groups: ['guests'] });
    const spoofed = ['X-Real-IP: 203.0.113.9', 'X-Forwarded-For: 198.51.100.7, 203.0.113.10', 'Forwarded: for=203.0.113.11', 'X_Real_IP: 203.0.113.12', 'True-Client-IP: 203.0.113.13'];
    const res = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/version', [...spoofed, `Authorization: Bearer ${token}`]);
    t.equal(res.status, 200, 'answered');
    const id = res.header('audit-id')!;
    const event = (await cluster.auditEvent((e) => e.auditID === id)) as { sourceIPs?: string[] };
    // The proxy connects from loopback, and it says the client did too.
    t.same(event.sourceIPs, ['127.0.0.1'], 'only the real client address (the proxy says so in X-Forwarded-For; kube adds its peer, the same)');
  });

  // Last: over everything this file sent, kube-apiserver never saw a smuggled identity.
  t.test('no audit event in this run has a smuggled user or group', async (t) => {
    const events = await cluster.auditEvents();
    t.ok(events.length > 50, `${events.length} audit events`);
    const forged = events.filter(
      (e) =>
        ['admin', 'root', '0', 'someone@example.com'].includes(e.user.username ?? '') ||
        // system:masters legitimately: the test's admin certificate and kube-apiserver's own loopback client.
        (e.user.groups?.includes('system:masters') && !['kfp-test-admin', 'system:apiserver'].includes(e.user.username ?? '')) ||
        Object.values(e.user.extra ?? {}).flat().some((v) => v.includes('forged') || v === 'cluster-admin'),
    );
    t.same(forged, [], 'no event with admin, root, system:masters (other than the admin and the apiserver itself) or a forged extra');
  });
}
