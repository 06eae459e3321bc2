// Attack class: a passed-through token borrowing the proxy's own client certificate.
//
// With authentication.passthrough, a bearer token the proxy does not know goes to
// kube-apiserver unread, for it to decide. If it travelled over the proxy's mutual-TLS
// connection, kube-apiserver would see the proxy's client certificate as well. Its
// requestheader authenticator passes (no X-Remote-User), and where the front-proxy CA is
// also in --client-ca-file (a shared CA is a common shortcut) its x509 authenticator takes
// the certificate for the caller: any garbage token becomes the proxy's own identity.
// kube's union authenticator tries x509 before tokens, so the token is never even read.
//
// The cluster here is configured that way on purpose; a passed-through request must still
// reach it as the client alone would: garbage → 401, for requests and upgrades alike.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import { startKube, startProxiedStack } from '../kube/helpers/kube-stack.js';
import { rawRequest } from '../kube/helpers/raw-http.js';
import { sendUpgrade, SPDY_LINES } from '../helpers/raw-upgrade.js';

const cluster = await startKube(t, {
  // Both CAs in --client-ca-file (the later flag wins): the proxy's client certificate is a user here.
  extraArgs: async (dir) => {
    const bundle = join(dir, 'client-ca-bundle.crt');
    await writeFile(bundle, `${await readFile(join(dir, 'ca.crt'), 'utf8')}\n${await readFile(join(dir, 'front-proxy-ca.crt'), 'utf8')}\n`);
    return [`--client-ca-file=${bundle}`];
  },
});
if (cluster) {
  const stack = await startProxiedStack(t, cluster, {
    configure: (c) => ({ ...c, authentication: { ...c.authentication, passthrough: true } }),
  });
  const review = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
  const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });

  t.test('the proxy certificate is a user of this cluster (the precondition)', async (t) => {
    const agent = new Agent({
      connect: { ca: await readFile(cluster.caFile), cert: await readFile(stack.pki.frontProxyClientCert), key: await readFile(stack.pki.frontProxyClientKey) },
    });
    t.teardown(() => agent.close());
    const res = await request(`${cluster.url}${review}`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const answer = (await res.body.json()) as { status?: { userInfo?: { username?: string } } };
    t.equal(answer.status?.userInfo?.username, 'front-proxy-client', 'kube takes the proxy certificate alone for front-proxy-client');
  });

  t.test('a garbage token passed through is refused, not taken for the proxy', async (t) => {
    const res = await rawRequest(stack.proxy.url, stack.servingCA, 'POST', review, ['Content-Type: application/json', 'Authorization: Bearer not-a-real-token'], body);
    t.equal(res.status, 401, res.body);
    t.notMatch(res.body, /front-proxy-client/);
    const line = await stack.proxyAuditLine(res.header('audit-id') ?? '');
    t.equal(line.authMethod, 'passthrough');
    t.equal(line.upstreamStatus, 401, 'kube-apiserver itself refused it');
  });

  t.test('a garbage token on an exec upgrade is refused by kube-apiserver with 401', async (t) => {
    const answer = await sendUpgrade(t, stack.proxy.url, stack.servingCA, 'POST', '/api/v1/namespaces/default/pods/victim/exec?command=id&stdout=1', [
      ...SPDY_LINES,
      'Authorization: Bearer not-a-real-token',
    ]);
    t.equal(answer.status, 401, answer.body);
  });
}
