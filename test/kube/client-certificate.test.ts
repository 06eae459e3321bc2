// kubectl with a client certificate through the proxy, against the real
// kube-apiserver: the same certificate straight to the apiserver (whose
// --client-ca-file is the same CA) gives the same userInfo; RBAC applies; an
// expired certificate is a 401 kubectl can show; the audit line says auth=x509.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { leaf, type Issued } from '../helpers/client-certificates.js';
import { kubectl, startKube, startProxiedStack, type ProxyAuditLine } from './helpers/kube-stack.js';

const cluster = await startKube(t);
if (cluster) {
  const stack = await startProxiedStack(t, cluster, {
    configure: (c) => ({ ...c, listen: { ...c.listen, tls: { ...c.listen.tls, clientCAFile: cluster.caFile } } }),
  });
  const dir = t.testdir();
  let n = 0;
  /** A kubeconfig with this certificate inline (client-certificate-data), for the proxy or for the apiserver itself. */
  const kubeconfig = async (cert: Issued, target: 'proxy' | 'direct') => {
    const file = join(dir, `kubeconfig-${++n}`);
    const server = target === 'proxy' ? { server: stack.proxy.url, 'certificate-authority': stack.pki.servingCA } : { server: cluster.url, 'certificate-authority': cluster.caFile };
    const b64 = (pem: string) => Buffer.from(pem).toString('base64');
    await writeFile(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: target, cluster: server }],
        users: [{ name: 'cert', user: { 'client-certificate-data': b64(cert.certPem), 'client-key-data': b64(cert.keyPem) } }],
        contexts: [{ name: target, context: { cluster: target, user: 'cert' } }],
        'current-context': target,
      }),
      { mode: 0o600 },
    );
    return file;
  };
  const auditLine = (match: (l: ProxyAuditLine) => boolean) => stack.lastProxyAuditLine(match);
  const run = async (cert: Issued, target: 'proxy' | 'direct', args: string[]) => kubectl(['--kubeconfig', await kubeconfig(cert, target), ...args], join(dir, `cache-${target}`));

  t.test('kubectl auth whoami: the same userInfo through the proxy as straight to kube-apiserver', async (t) => {
    const cases: [string, string][] = [
      ['CN, several O', 'O=kfp-team-b, O=kfp-team-a, O=with\\, comma, CN=kfp-cert-user'],
      ['a uid attribute (AllowParsingUserUIDFromCertAuth)', 'O=kfp-team-a, CN=kfp-uid-user, 1.3.6.1.4.1.57683.2=kfp-uid-123'],
      ['no O', 'CN=kfp-lonely'],
    ];
    for (const [name, subject] of cases) {
      const cert = await leaf(cluster.ca, { subject });
      const viaProxy = await run(cert, 'proxy', ['auth', 'whoami', '-o', 'json']);
      const direct = await run(cert, 'direct', ['auth', 'whoami', '-o', 'json']);
      t.equal(viaProxy.code, 0, viaProxy.stderr);
      t.equal(direct.code, 0, direct.stderr);
      const proxied = JSON.parse(viaProxy.stdout).status.userInfo;
      t.same(proxied, JSON.parse(direct.stdout).status.userInfo, name);
      if (subject.includes('57683')) t.equal(proxied.uid, 'kfp-uid-123', `${name}: kube reads the uid`);
      t.match(proxied.extra, { 'authentication.kubernetes.io/credential-id': [/^X509SHA256=[0-9a-f]{64}$/] }, `${name}: kube's credential id`);
    }
  });

  t.test('RBAC applies: a certificate user without rights gets 403 through the proxy', async (t) => {
    const cert = await leaf(cluster.ca, { subject: 'O=kfp-nobody-group, CN=kfp-nobody' });
    const denied = await run(cert, 'proxy', ['get', '--raw', '/api/v1/namespaces/default/secrets']);
    t.not(denied.code, 0);
    t.match(denied.stderr, /Forbidden|forbidden/, denied.stderr);
    t.match(denied.stderr, /kfp-nobody/, 'the apiserver names the certificate user');
    const line = await auditLine((l) => l.user === 'kfp-nobody');
    t.match(line, { authMethod: 'x509', status: 403, upstreamStatus: 403, groups: ['kfp-nobody-group'] }, 'the audit line says auth=x509');
  });

  t.test('an expired certificate: 401, and kubectl says Unauthorized, as straight to kube-apiserver', async (t) => {
    const hour = 3_600_000;
    const cert = await leaf(cluster.ca, { subject: 'O=system:masters, CN=kfp-expired', notBefore: new Date(Date.now() - 2 * hour), notAfter: new Date(Date.now() - hour) });
    const viaProxy = await run(cert, 'proxy', ['get', '--raw', '/api/v1/namespaces/default/secrets']);
    const direct = await run(cert, 'direct', ['get', '--raw', '/api/v1/namespaces/default/secrets']);
    t.not(direct.code, 0);
    t.match(direct.stderr, /Unauthorized/, `direct: ${direct.stderr}`);
    t.not(viaProxy.code, 0);
    t.match(viaProxy.stderr, /Unauthorized/, `proxy: ${viaProxy.stderr}`);
    const line = await auditLine((l) => l.status === 401 && l.rejectReason === 'bad_client_certificate');
    t.ok(line, 'the audit line names the reason');
  });
}
