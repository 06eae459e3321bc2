// Static tokens, webhook tokens and TokenReview against the real kube-apiserver:
// kube-apiserver is given the same token file (--token-auth-file) and the same
// webhook (--authentication-token-webhook-config-file) as the proxy, so each
// token can be asked about straight and through the proxy, and `kubectl auth
// whoami` must print the same userInfo both ways. In tokenReview mode the proxy
// asks kube-apiserver's TokenReview API with its own service account (bound to
// system:auth-delegator, its token from the TokenRequest API); a service
// account deleted after its token was reviewed stops working within the TTL.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { review, startTokenWebhook } from '../helpers/token-webhook.js';
import { kubectl, serviceAccountToken, startKube, startProxiedStack, type ProxyAuditLine } from './helpers/kube-stack.js';

const dir = mkdtempSync(join(tmpdir(), 'kfp-token-credentials-'));
const staticFile = join(dir, 'tokens.csv');
writeFileSync(staticFile, 'kfp-static-token-1,kfp-static-user,static-uid-1,"kfp-dev,kfp-ops"\nkfp-static-token-2,kfp-static-nouid,\n');
const webhookUsers: Record<string, unknown> = {
  'kfp-webhook-token-1': { username: 'kfp-webhook-user', uid: 'wh-1', groups: ['kfp-webhook-group'], extra: { 'example.com/team': ['blue', 'green'] } },
};
const hook = await startTokenWebhook((token) => {
  const user = webhookUsers[token];
  return { body: review(user ? { authenticated: true, user } : { authenticated: false }) };
});
t.teardown(() => hook.close());
const webhookKubeconfig = hook.kubeconfig(dir);

const cluster = await startKube(t, {
  extraArgs: [
    `--token-auth-file=${staticFile}`,
    `--authentication-token-webhook-config-file=${webhookKubeconfig}`,
    '--authentication-token-webhook-version=v1',
    '--authentication-token-webhook-cache-ttl=2s',
  ],
});
if (cluster) {
  // The proxy's own credential for TokenReview: a service account bound to system:auth-delegator.
  const proxyToken = await serviceAccountToken(cluster, 'kfp-system', 'kube-front-proxy');
  const binding = await cluster.admin('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    method: 'POST',
    body: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'kube-front-proxy:auth-delegator' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'kube-front-proxy', namespace: 'kfp-system' }],
    },
  });
  if (binding.status !== 201) throw new Error(`ClusterRoleBinding: ${binding.status} ${JSON.stringify(binding.body)}`);
  const proxyTokenFile = join(dir, 'proxy-token');
  writeFileSync(proxyTokenFile, proxyToken);
  const reviewKubeconfig = join(dir, 'token-review.kubeconfig');
  writeFileSync(
    reviewKubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'kube', cluster: { server: cluster.url, 'certificate-authority': cluster.caFile } }],
      users: [{ name: 'kube-front-proxy', user: { tokenFile: proxyTokenFile } }],
      contexts: [{ name: 'kube', context: { cluster: 'kube', user: 'kube-front-proxy' } }],
      'current-context': 'kube',
    }),
  );

  const stack = await startProxiedStack(t, cluster, {
    configure: (c) => ({
      ...c,
      authentication: {
        ...c.authentication,
        staticTokenFile: staticFile,
        webhook: { configFile: webhookKubeconfig, cacheTTL: '2s' },
        tokenReview: { kubeconfig: reviewKubeconfig, cacheTTL: '2s' },
      },
    }),
  });

  let n = 0;
  const directKubeconfig = (token: string) => {
    const file = join(dir, `direct-${++n}.kubeconfig`);
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'kube', cluster: { server: cluster.url, 'certificate-authority': cluster.caFile } }],
        users: [{ name: 'u', user: { token } }],
        contexts: [{ name: 'kube', context: { cluster: 'kube', user: 'u' } }],
        'current-context': 'kube',
      }),
      { mode: 0o600 },
    );
    return file;
  };
  const whoami = async (token: string, target: 'proxy' | 'direct') => {
    const kubeconfig = target === 'proxy' ? await stack.kubeconfig(token) : directKubeconfig(token);
    const result = await kubectl(['--kubeconfig', kubeconfig, 'auth', 'whoami', '-o', 'json'], join(dir, `cache-${target}`));
    return { ...result, userInfo: result.code === 0 ? (JSON.parse(result.stdout) as { status: { userInfo: Record<string, unknown> } }).status.userInfo : undefined };
  };
  const auditLine = (match: (l: ProxyAuditLine) => boolean) => stack.lastProxyAuditLine(match);
  const same = async (t: Test, token: string, method: string) => {
    const direct = await whoami(token, 'direct');
    const proxied = await whoami(token, 'proxy');
    t.equal(direct.code, 0, direct.stderr);
    t.equal(proxied.code, 0, proxied.stderr);
    t.same(proxied.userInfo, direct.userInfo, 'the same userInfo through the proxy as straight');
    const line = await auditLine((l) => l.user === direct.userInfo?.username);
    t.equal(line?.authMethod, method, `the audit line says auth=${method}`);
    return proxied.userInfo;
  };

  t.test('static tokens: the same user, uid and groups as kube-apiserver gives them', async (t) => {
    t.match(await same(t, 'kfp-static-token-1', 'static_token'), { username: 'kfp-static-user', uid: 'static-uid-1', groups: ['kfp-dev', 'kfp-ops', 'system:authenticated'] });
    t.match(await same(t, 'kfp-static-token-2', 'static_token'), { username: 'kfp-static-nouid' });
  });

  t.test('webhook tokens: the webhook\'s user, groups and extra, as kube-apiserver gives them', async (t) => {
    t.match(await same(t, 'kfp-webhook-token-1', 'webhook'), { username: 'kfp-webhook-user', uid: 'wh-1', extra: { 'example.com/team': ['blue', 'green'] } });
  });

  t.test('tokenReview: a service account token from the TokenRequest API, reviewed by kube-apiserver', async (t) => {
    const token = await serviceAccountToken(cluster, 'ci', 'deployer');
    t.match(await same(t, token, 'token_review'), { username: 'system:serviceaccount:ci:deployer', groups: ['system:serviceaccounts', 'system:serviceaccounts:ci', 'system:authenticated'] });
  });

  t.test('a token nobody knows: 401 through the proxy, kubectl says so', async (t) => {
    const proxied = await whoami('kfp-nobody-knows-this', 'proxy');
    t.not(proxied.code, 0);
    t.match(proxied.stderr, /Unauthorized|must be logged in/);
  });

  t.test("a deleted service account's token stops working within the cache TTL", async (t) => {
    // kube-apiserver remembers a token's success for 10 s itself (TokenSuccessCacheTTL,
    // k8s.io/kubernetes@v1.37.2 pkg/kubeapiserver/options/authentication.go), and its TokenReview
    // API answers from that cache: the proxy may add at most its own TTL (2 s here) to that.
    const token = await serviceAccountToken(cluster, 'ci', 'doomed');
    t.equal((await whoami(token, 'proxy')).code, 0, 'works while the account exists');
    t.equal((await whoami(token, 'direct')).code, 0);
    const deleted = await cluster.admin('/api/v1/namespaces/ci/serviceaccounts/doomed', { method: 'DELETE' });
    t.equal(deleted.status, 200);
    const start = Date.now();
    let direct: number | undefined;
    let proxied: number | undefined;
    while (Date.now() - start < 20_000 && (direct === undefined || proxied === undefined)) {
      const [d, p] = await Promise.all([direct ?? whoami(token, 'direct'), proxied ?? whoami(token, 'proxy')]);
      if (direct === undefined && typeof d !== 'number' && d.code !== 0) direct = Date.now() - start;
      if (proxied === undefined && typeof p !== 'number' && p.code !== 0) proxied = Date.now() - start;
      await sleep(100);
    }
    t.comment(`refused ${direct} ms after the deletion straight, ${proxied} ms through the proxy`);
    t.ok(direct !== undefined && direct <= 10_000 + 1_000, 'kube-apiserver refuses it within its own 10 s cache');
    t.ok(proxied !== undefined && direct !== undefined && proxied <= direct + 2_000 + 1_000, 'the proxy adds at most its 2 s TTL');
  });
}
