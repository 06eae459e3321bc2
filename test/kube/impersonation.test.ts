// kubectl --as through the proxy against the real apiserver: it works only when
// the proxy forwards Impersonate-* headers (allowImpersonationHeaders) AND RBAC
// grants the real user "impersonate"; kube-apiserver authorizes it against the
// identity the proxy set.
import t from 'tap';
import { startKube, startProxiedStack } from './helpers/kube-stack.js';

const cluster = await startKube(t);
if (cluster) {
  const refusing = await startProxiedStack(t, cluster);
  const forwarding = await startProxiedStack(t, cluster, {
    configure: (c) => ({ ...c, authentication: { ...c.authentication, allowImpersonationHeaders: true } }),
  });

  // oidc:sre may impersonate users and groups; oidc:developers may not.
  const rbac = '/apis/rbac.authorization.k8s.io/v1';
  const created = await Promise.all([
    cluster.admin(`${rbac}/clusterroles`, {
      method: 'POST',
      body: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'kfp-impersonator' },
        rules: [{ apiGroups: [''], resources: ['users', 'groups'], verbs: ['impersonate'] }],
      },
    }),
    cluster.admin(`${rbac}/clusterrolebindings`, {
      method: 'POST',
      body: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'kfp-sre-impersonate' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kfp-impersonator' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'oidc:sre' }],
      },
    }),
    // oidc:limited may impersonate users but not groups.
    cluster.admin(`${rbac}/clusterroles`, {
      method: 'POST',
      body: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'kfp-user-impersonator' },
        rules: [{ apiGroups: [''], resources: ['users'], verbs: ['impersonate'] }],
      },
    }),
    cluster.admin(`${rbac}/clusterrolebindings`, {
      method: 'POST',
      body: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'kfp-limited-impersonate' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kfp-user-impersonator' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'oidc:limited' }],
      },
    }),
  ]);
  t.same(created.map((r) => r.status), [201, 201, 201, 201], 'RBAC objects created');

  const whoamiAs = async (stack: typeof refusing, claims: Record<string, unknown>, asArgs: string[]) => {
    const kc = await stack.kubeconfig(await stack.mint(claims));
    return stack.kubectl(kc, [...asArgs, 'auth', 'whoami', '-o', 'json']);
  };
  const sre = { sub: 'sre-1', email: 'sre@example.com', groups: ['sre'] };
  const developer = { sub: 'dev-1', email: 'dev@example.com', groups: ['developers'] };
  const usersOnly = { sub: 'limited-1', email: 'limited@example.com', groups: ['limited'] };

  t.test('allowed by the proxy and granted by RBAC: kubectl --as works', async (t) => {
    const { code, stdout, stderr } = await whoamiAs(forwarding, sre, ['--as', 'someone@example.com', '--as-group', 'viewers']);
    t.equal(code, 0, stderr);
    t.same(JSON.parse(stdout).status.userInfo, { username: 'someone@example.com', groups: ['viewers', 'system:authenticated'] });
    const event = await cluster.auditEvent(
      (e) => e.requestURI === '/apis/authentication.k8s.io/v1/selfsubjectreviews' && e.impersonatedUser?.username === 'someone@example.com',
    );
    t.equal(event.user.username, 'sre@example.com', 'the audit event names the real user the proxy set');
    t.same(event.user.groups, ['oidc:sre', 'system:authenticated']);
  });

  // kubectl auth whoami hides a 403 behind its own message, and so does discovery ("Forbidden: unknown");
  // get --raw shows the API server's Status message.
  const getAs = async (stack: typeof refusing, claims: Record<string, unknown>, asArgs: string[]) => {
    const kc = await stack.kubeconfig(await stack.mint(claims));
    return stack.kubectl(kc, [...asArgs, 'get', '--raw', '/api/v1/namespaces/default/configmaps']);
  };

  t.test('allowed by the proxy but not granted by RBAC: kube-apiserver refuses', async (t) => {
    const { code, stderr } = await getAs(forwarding, developer, ['--as', 'someone@example.com']);
    t.not(code, 0);
    // Kubernetes 1.37 checks constrained impersonation first ("impersonate-on:user-info:<verb>") and names it
    // in the message; the legacy "impersonate" verb on users is what the sre binding grants.
    t.match(stderr, /Error from server \(Forbidden\): .*forbidden: User "dev@example.com" cannot impersonate/);
  });

  t.test('a user it may impersonate, with a group it may not: refused', async (t) => {
    const { code, stderr } = await getAs(forwarding, usersOnly, ['--as', 'someone@example.com', '--as-group', 'system:masters']);
    t.not(code, 0);
    t.match(stderr, /Error from server \(Forbidden\): .*forbidden: User "limited@example.com" cannot impersonate/);
    t.comment(`kube-apiserver said: ${stderr.trim()}`);
    const userAlone = await whoamiAs(forwarding, usersOnly, ['--as', 'someone@example.com']);
    t.equal(userAlone.code, 0, userAlone.stderr);
    t.equal(JSON.parse(userAlone.stdout).status.userInfo.username, 'someone@example.com', 'the user alone is allowed');
  });

  t.test('granted by RBAC but not allowed by the proxy: 403 from the proxy', async (t) => {
    const { code, stderr } = await getAs(refusing, sre, ['--as', 'someone@example.com']);
    t.not(code, 0);
    t.match(stderr, /impersonation headers are not allowed through this proxy/);
    const plain = await whoamiAs(refusing, sre, []);
    t.equal(plain.code, 0, 'the same user without --as is fine');
    t.equal(JSON.parse(plain.stdout).status.userInfo.username, 'sre@example.com');
  });
}
