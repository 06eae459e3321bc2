// upstream.identity: impersonation against the real kube-apiserver, the way a
// managed cluster runs it: the proxy has no front-proxy certificate, only a
// service account (kube-front-proxy/kube-front-proxy) with a token from the
// TokenRequest API and the ClusterRole of deploy/kubernetes/overlays/managed.
// Every identity is compared with requestheader mode on the very same tokens
// (a twin proxy with the same issuer): the userInfo must be identical.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../../src/config/schema.js';
import { startKube, startProxiedStack, startTwinProxy, type KubeCluster, type ProxiedStack } from './helpers/kube-stack.js';

const OVERLAY = 'deploy/kubernetes/overlays/managed';
const PROXY_SA = { namespace: 'kube-front-proxy', name: 'kube-front-proxy' };
const PROXY_USER = `system:serviceaccount:${PROXY_SA.namespace}:${PROXY_SA.name}`;
const dir = mkdtempSync(join(tmpdir(), 'kfp-impersonation-'));
const tokenFile = join(dir, 'token');

type UserInfo = { username: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };

/** Creates an object as the admin; 201 or already there. */
async function create(cluster: KubeCluster, path: string, body: Record<string, unknown>): Promise<void> {
  const res = await cluster.admin(path, { method: 'POST', body });
  if (res.status !== 201 && res.status !== 409) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`);
}

/** A token for the proxy's service account, bound to a Secret of its own so each token is told apart by its jti. */
async function proxyToken(cluster: KubeCluster, secret: string): Promise<{ token: string; jti: string }> {
  const ns = `/api/v1/namespaces/${PROXY_SA.namespace}`;
  await create(cluster, `${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: secret } });
  const { body: made } = await cluster.admin(`${ns}/secrets/${secret}`);
  const { status, body } = await cluster.admin(`${ns}/serviceaccounts/${PROXY_SA.name}/token`, {
    method: 'POST',
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 3600, boundObjectRef: { kind: 'Secret', apiVersion: 'v1', name: secret, uid: made.metadata.uid } },
    },
  });
  if (status !== 201) throw new Error(`TokenRequest: ${status} ${JSON.stringify(body)}`);
  const token = (body as { status: { token: string } }).status.token;
  const jti = (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { jti: string }).jti;
  return { token, jti };
}

/** The twin's configuration: impersonation, the proxy's token file, no front-proxy certificate. */
const impersonating =
  (allowImpersonationHeaders = false) =>
  (config: Config, auditFile: string): Config => ({
    ...config,
    upstream: { ...config.upstream!, identity: 'impersonation', clientCertFile: undefined, clientKeyFile: undefined, tokenFile },
    authentication: { ...config.authentication, allowImpersonationHeaders },
    audit: { ...config.audit, path: auditFile },
  });

const cluster = await startKube(t);
if (cluster) {
  // The service account, the overlay's ClusterRole and binding, exactly as shipped.
  await create(cluster, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PROXY_SA.namespace } });
  await create(cluster, `/api/v1/namespaces/${PROXY_SA.namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: PROXY_SA.name } });
  const rbac = '/apis/rbac.authorization.k8s.io/v1';
  await create(cluster, `${rbac}/clusterroles`, parseYaml(readFileSync(join(OVERLAY, 'clusterrole.yaml'), 'utf8')));
  await create(cluster, `${rbac}/clusterrolebindings`, parseYaml(readFileSync(join(OVERLAY, 'clusterrolebinding.yaml'), 'utf8')));
  const first = await proxyToken(cluster, 'proxy-token-1');
  writeFileSync(tokenFile, first.token);

  const viaHeaders = await startProxiedStack(t, cluster);
  const viaImpersonation = await startTwinProxy(t, viaHeaders, impersonating());

  const whoami = async (stack: ProxiedStack, token: string, args: string[] = []) => {
    const result = await stack.kubectl(await stack.kubeconfig(token), ['auth', 'whoami', '-o', 'json', ...args]);
    return { ...result, userInfo: result.code === 0 ? (JSON.parse(result.stdout) as { status: { userInfo: UserInfo } }).status.userInfo : undefined };
  };
  /** The same token through both proxies: the same userInfo, which is returned. */
  const sameBothWays = async (t: Test, token: string, args: string[] = [], [a, b] = [viaHeaders, viaImpersonation]) => {
    const [headers, impersonated] = await Promise.all([whoami(a, token, args), whoami(b, token, args)]);
    t.equal(headers.code, 0, headers.stderr);
    t.equal(impersonated.code, 0, impersonated.stderr);
    t.same(impersonated.userInfo, headers.userInfo, 'impersonation gives the identity requestheader gives');
    return impersonated.userInfo;
  };

  t.test('the same identity as requestheader mode on the same tokens', async (t) => {
    const login = await sameBothWays(t, await viaHeaders.login());
    t.match(login, { username: 'demo@example.com', uid: 'demo', groups: ['oidc:developers', 'oidc:infrastructure', 'system:authenticated'] });
    const odd = await sameBothWays(
      t,
      await viaHeaders.mint({ jti: 'jti-odd-1', sub: 'ünï-42', email: 'zoë.ñandú@example.com', groups: ['a,b', 'with space', 'ütf-8', 'system:masters'] }),
    );
    t.same(odd?.groups, ['oidc:a,b', 'oidc:with space', 'oidc:ütf-8', 'oidc:system:masters', 'system:authenticated']);
    t.same(odd?.extra, { 'authentication.kubernetes.io/credential-id': ['JTI=jti-odd-1'] });
    // No groups at all: kube's impersonation filter and its requestheader path must still agree.
    const none = await sameBothWays(t, await viaHeaders.mint({ email: 'nogroups@example.com', groups: [] }));
    t.same(none?.groups, ['system:authenticated']);

    const event = await cluster.auditEvent((e) => e.impersonatedUser?.username === 'demo@example.com' && e.requestURI.includes('selfsubjectreviews'));
    t.equal(event.user.username, PROXY_USER, "kube-apiserver's audit: the proxy's service account acted…");
    t.equal(event.impersonatedUser?.username, 'demo@example.com', '…as the person');
  });

  t.test('RBAC grants and denies as it would for the user', async (t) => {
    for (const name of ['kfp-imp-granted', 'kfp-imp-other']) await create(cluster, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    const ns = `${rbac}/namespaces/kfp-imp-granted`;
    await create(cluster, `${ns}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'reader' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }] });
    await create(cluster, `${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'infra-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'oidc:infrastructure' }],
    });
    const kubeconfig = await viaImpersonation.kubeconfig(await viaImpersonation.login());
    const granted = await viaImpersonation.kubectl(kubeconfig, ['get', 'configmaps', '-n', 'kfp-imp-granted']);
    t.equal(granted.code, 0, granted.stderr);
    const denied = await viaImpersonation.kubectl(kubeconfig, ['get', 'configmaps', '-n', 'kfp-imp-other']);
    t.not(denied.code, 0);
    t.match(denied.stderr, /User "demo@example.com" cannot list resource "configmaps"/, "RBAC judged the person, not the proxy's account");
    const own = await viaImpersonation.kubectl(kubeconfig, ['get', 'secrets', '-n', PROXY_SA.namespace]);
    t.match(own.stderr, /User "demo@example.com" cannot list resource "secrets"/, "the proxy's own namespace is no easier");
  });

  t.test('a watch streams, and survives the token rotating under it; new requests use the new token', async (t) => {
    const ns = 'kfp-imp-watch';
    await create(cluster, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    // (Not the aggregated 'view' role: no controller-manager runs here to fill it.)
    await create(cluster, `${rbac}/namespaces/${ns}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'watcher' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch'] }] });
    await create(cluster, `${rbac}/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'watcher' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'watcher' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'demo@example.com' }],
    });
    const token = await viaImpersonation.login();
    const res = await viaImpersonation.fetch(`/api/v1/namespaces/${ns}/configmaps?watch=1`, { headers: { authorization: `Bearer ${token}` } });
    t.equal(res.statusCode, 200);
    const events: string[] = [];
    let partial = '';
    res.body.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line) events.push((JSON.parse(line) as { object: { metadata: { name: string } } }).object.metadata.name);
    });
    t.teardown(() => res.body.destroy());
    const seen = async (name: string) => {
      for (let i = 0; i < 200 && !events.includes(name); i++) await sleep(25);
      return events.includes(name);
    };
    await create(cluster, `/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'before' } });
    t.ok(await seen('before'), 'an event through the impersonating proxy');

    // The kubelet rotates the projected token by replacing the file; the proxy follows.
    const second = await proxyToken(cluster, 'proxy-token-2');
    writeFileSync(tokenFile, second.token);
    for (let i = 0; i < 200 && !viaImpersonation.logs().some((l) => l.msg === 'upstream token reloaded'); i++) await sleep(25);
    t.ok(viaImpersonation.logs().some((l) => l.msg === 'upstream token reloaded'), 'the proxy read the new token');
    await create(cluster, `/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after' } });
    t.ok(await seen('after'), 'the open watch keeps streaming after the rotation');

    const list = await viaImpersonation.fetch(`/api/v1/namespaces/${ns}/configmaps`, { headers: { authorization: `Bearer ${token}` } });
    t.equal(list.statusCode, 200);
    const auditId = String(list.headers['audit-id']);
    await list.body.dump();
    const event = await cluster.auditEvent((e) => e.auditID === auditId);
    t.same(event.user.extra?.['authentication.kubernetes.io/credential-id'], [`JTI=${second.jti}`], 'a new request presents the new token');
    t.equal(event.impersonatedUser?.username, 'demo@example.com');
  });

  t.test('an exec upgrade reaches kube-apiserver as the user', async (t) => {
    const ns = 'kfp-imp-exec';
    await create(cluster, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await create(cluster, `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
    await create(cluster, `/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'target' },
      spec: { containers: [{ name: 'c', image: 'registry.invalid/none' }] },
    });
    const kubeconfig = await viaImpersonation.kubeconfig(await viaImpersonation.login());
    const denied = await viaImpersonation.kubectl(kubeconfig, ['exec', '-n', ns, 'target', '--', 'true']);
    t.match(denied.stderr, /User "demo@example.com" cannot (create|get) resource "pods(\/exec)?"/, 'RBAC judged the person on the upgrade');
    await create(cluster, `${rbac}/namespaces/${ns}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'exec' }, rules: [{ apiGroups: [''], resources: ['pods', 'pods/exec'], verbs: ['get', 'create'] }] });
    await create(cluster, `${rbac}/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'exec' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'exec' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'demo@example.com' }],
    });
    const past = await viaImpersonation.kubectl(kubeconfig, ['exec', '-n', ns, 'target', '--', 'true']);
    t.match(past.stderr, /does not have a host assigned/, 'past authorization: the apiserver looked for the node');
    const events = (await cluster.auditEvents()).filter((e) => e.requestURI.includes(`/namespaces/${ns}/pods/target/exec`));
    t.ok(events.length > 0, 'the upgrade reached kube-apiserver');
    t.ok(events.every((e) => e.user.username === PROXY_USER && e.impersonatedUser?.username === 'demo@example.com'), 'as the proxy acting as the person');
  });

  /** kubectl get --raw (no discovery first): unlike auth whoami, kubectl prints a refusal's Status message. */
  const listNamespaces = async (stack: ProxiedStack, token: string, args: readonly string[]) => stack.kubectl(await stack.kubeconfig(token), ['get', '--raw', '/api/v1/namespaces', ...args]);

  t.test("a client's Impersonate-User is refused by default", async (t) => {
    const result = await listNamespaces(viaImpersonation, await viaImpersonation.login(), ['--as', 'someone-else']);
    t.not(result.code, 0);
    t.match(result.stderr, /impersonation headers are not allowed through this proxy/);
  });

  t.test('allowed by the admin: only for a caller RBAC lets impersonate that target', async (t) => {
    // SubjectAccessReview needs system:auth-delegator: the overlay's optional binding, as shipped.
    await create(cluster, `${rbac}/clusterrolebindings`, parseYaml(readFileSync(join(OVERLAY, 'clusterrolebinding-auth-delegator.yaml'), 'utf8')));
    const allowingHeaders = await startProxiedStack(t, cluster, { configure: (c) => ({ ...c, authentication: { ...c.authentication, allowImpersonationHeaders: true } }) });
    const allowingImpersonation = await startTwinProxy(t, allowingHeaders, impersonating(true));
    // oidc:sre may impersonate users and the group kfp-auditors; nothing else.
    await create(cluster, `${rbac}/clusterroles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'kfp-sre-impersonator' },
      rules: [
        { apiGroups: [''], resources: ['users'], verbs: ['impersonate'] },
        { apiGroups: [''], resources: ['groups'], verbs: ['impersonate'], resourceNames: ['kfp-auditors'] },
      ],
    });
    await create(cluster, `${rbac}/clusterrolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'kfp-sre-impersonator' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kfp-sre-impersonator' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'oidc:sre' }],
    });
    const sre = await allowingHeaders.mint({ email: 'sre@example.com', groups: ['sre'] });
    const developer = await allowingHeaders.mint({ email: 'dev@example.com', groups: ['developers'] });

    const asked = ['--as', 'target-user', '--as-group', 'kfp-auditors'];
    const acting = await sameBothWays(t, sre, asked, [allowingHeaders, allowingImpersonation]);
    t.same(acting, { username: 'target-user', groups: ['kfp-auditors', 'system:authenticated'] }, 'the target, as kube builds it');
    const line = await allowingImpersonation.lastProxyAuditLine((l) => l.user === 'sre@example.com');
    t.equal(line?.impersonatedUser, 'target-user', 'the audit line names the caller and whom they acted as');

    for (const [who, token, args, why] of [
      ['a developer', developer, ['--as', 'target-user'], 'no impersonate on users'],
      ['sre', sre, ['--as', 'target-user', '--as-group', 'system:masters'], 'a group outside its resourceNames'],
      ['sre', sre, ['--as', 'target-user', '--as-uid', 'u-1'], 'no impersonate on uids'],
    ] as const) {
      const viaProxy = await listNamespaces(allowingImpersonation, token, args);
      t.not(viaProxy.code, 0, `${who}: refused (${why})`);
      t.match(viaProxy.stderr, /you may not impersonate/, `${who}: the proxy's 403 (${why})`);
      const straight = await listNamespaces(allowingHeaders, token, args);
      t.match(straight.stderr, /cannot impersonate/, `${who}: requestheader mode, where kube-apiserver decides, refuses it as well (${why})`);
    }
    const reached = (await cluster.auditEvents()).filter((e) => e.impersonatedUser?.username === 'target-user' && e.user.username === PROXY_USER);
    t.ok(reached.every((e) => e.impersonatedUser?.groups?.includes('kfp-auditors')), 'no refused attempt reached kube-apiserver as the proxy');
  });

  t.test("the ClusterRole is least privilege: the proxy's account can impersonate, and do nothing else", async (t) => {
    const can = async (attributes: Record<string, string>) => {
      const { status, body } = await cluster.admin('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        method: 'POST',
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: { user: PROXY_USER, groups: ['system:serviceaccounts', `system:serviceaccounts:${PROXY_SA.namespace}`, 'system:authenticated'], resourceAttributes: attributes },
        },
      });
      t.equal(status, 201);
      return (body as { status: { allowed: boolean } }).status.allowed;
    };
    t.ok(await can({ verb: 'impersonate', resource: 'users', name: 'anyone' }));
    t.ok(await can({ verb: 'impersonate', resource: 'groups', name: 'oidc:anything' }));
    t.ok(await can({ verb: 'impersonate', group: 'authentication.k8s.io', resource: 'uids', name: 'x' }));
    t.ok(await can({ verb: 'impersonate', group: 'authentication.k8s.io', resource: 'userextras', subresource: 'authentication.kubernetes.io/credential-id', name: 'JTI=x' }));
    t.notOk(await can({ verb: 'impersonate', group: 'authentication.k8s.io', resource: 'userextras', subresource: 'scopes', name: 'x' }), 'no extra key it does not map');
    t.notOk(await can({ verb: 'impersonate', resource: 'serviceaccounts', namespace: 'kube-system', name: 'default' }), 'no service accounts');
    t.notOk(await can({ verb: 'list', resource: 'secrets' }), 'no reading of its own');
    t.notOk(await can({ verb: 'create', resource: 'pods', namespace: 'default' }), 'no writing of its own');
  });
}
