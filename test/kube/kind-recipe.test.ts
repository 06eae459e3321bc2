// deploy/kind/setup.sh against a real kube-apiserver standing in for kind's:
// docker is replaced by a stand-in that answers `docker exec <node> cat <file>`
// with this run's PKI files (the front-proxy CA, the cluster CA, a kubeadm-style
// manifest), and the kind-kfp kubeconfig context points at the test apiserver.
// Everything else is the script as a user runs it: openssl signs the client
// certificate, kubectl applies the RBAC example, and the config it writes
// carries a proxy that the apiserver believes.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { dirname, join } from 'node:path';
import t from 'tap';
import { parseConfig, parseYaml } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { devPki } from '../helpers/stack.js';
import { startKube, startProxiedStack } from './helpers/kube-stack.js';

const SCRIPT = join(import.meta.dirname, '../../deploy/kind/setup.sh');

const cluster = await startKube(t);
if (cluster) {
  t.test('setup.sh makes a proxy the apiserver trusts, and applies the RBAC example', async (t) => {
    const pki = await devPki();
    const dir = t.testdir();
    const bin = join(dir, 'bin');
    await mkdir(bin);
    // What kubeadm puts in kind's kube-apiserver manifest (the lines setup.sh reads).
    await writeFile(
      join(dir, 'kube-apiserver.yaml'),
      [
        '    - --requestheader-allowed-names=front-proxy-client',
        '    - --requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt',
        '    - --requestheader-extra-headers-prefix=X-Remote-Extra-',
        '    - --requestheader-group-headers=X-Remote-Group',
        '    - --requestheader-username-headers=X-Remote-User',
        '',
      ].join('\n'),
    );
    const files: Record<string, string> = {
      '/etc/kubernetes/pki/front-proxy-ca.crt': pki.frontProxyCA,
      '/etc/kubernetes/pki/front-proxy-ca.key': pki.frontProxyCAKey,
      '/etc/kubernetes/pki/ca.crt': cluster.caFile,
      '/etc/kubernetes/manifests/kube-apiserver.yaml': join(dir, 'kube-apiserver.yaml'),
    };
    const cases = Object.entries(files)
      .map(([from, to]) => `    "${from}") exec cat "${to}" ;;`)
      .join('\n');
    await writeFile(
      join(bin, 'docker'),
      `#!/bin/sh
# A stand-in for docker: only "docker exec kfp-control-plane true|cat FILE".
[ "$1" = exec ] && [ "$2" = kfp-control-plane ] || { echo "fake docker: unexpected: $*" >&2; exit 1; }
[ "$3" = true ] && exit 0
[ "$3" = cat ] || { echo "fake docker: unexpected: $*" >&2; exit 1; }
case "$4" in
${cases}
    *) echo "cat: $4: No such file or directory" >&2; exit 1 ;;
esac
`,
    );
    await chmod(join(bin, 'docker'), 0o755);
    const admin = JSON.parse(await readFile(cluster.adminKubeconfig, 'utf8'));
    admin.contexts[0].name = 'kind-kfp';
    admin['current-context'] = 'kind-kfp';
    await writeFile(join(dir, 'kubeconfig'), JSON.stringify(admin));

    const config = join(dir, 'config', 'kind.yaml');
    const out = join(dir, 'out');
    const result = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        'bash',
        [SCRIPT, 'kfp'],
        {
          env: {
            ...process.env,
            PATH: `${bin}:${process.env.PATH}`,
            KUBECONFIG: join(dir, 'kubeconfig'),
            KUBECACHEDIR: join(dir, 'kubecache'),
            KFP_KIND_OUT: out,
            KFP_KIND_CONFIG: config,
          },
        },
        (err, _stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    t.equal(result.code, 0, result.stderr);
    t.match(result.stderr, /wrote .*kind\.yaml/);

    const cert = new X509Certificate(await readFile(join(out, 'front-proxy-client.crt')));
    t.equal(cert.subject, 'CN=front-proxy-client');
    t.ok(cert.checkIssued(new X509Certificate(await readFile(pki.frontProxyCA))), 'signed by the front-proxy CA');
    t.match(cert.toLegacyObject().ext_key_usage ?? [], ['1.3.6.1.5.5.7.3.2'], 'clientAuth');
    t.notOk(
      await readFile(join(out, 'front-proxy-ca.key')).then(() => true, () => false),
      'the CA key is not left behind',
    );

    const written = parseConfig(parseYaml(await readFile(config, 'utf8')), dirname(config), { checkFiles: false });
    t.equal(written.upstream!.url, cluster.url, 'the config points at the cluster of the context');
    t.same((await cluster.admin('/apis/rbac.authorization.k8s.io/v1/namespaces/demo/rolebindings/oidc-infrastructure-viewer')).status, 200, 'rbac.yaml applied');

    // The proxy with the upstream part of that config (the listener and issuer are the test's own).
    const stack = await startProxiedStack(t, cluster, {
      configure: (c): ConfigInput => ({
        ...c,
        upstream: {
          ...c.upstream,
          url: written.upstream!.url,
          caFile: written.upstream!.caFile,
          clientCertFile: written.upstream!.clientCertFile,
          clientKeyFile: written.upstream!.clientKeyFile,
        },
      }),
    });
    const kc = await stack.kubeconfig(await stack.login());
    const whoami = await stack.kubectl(kc, ['auth', 'whoami', '-o', 'json']);
    t.equal(whoami.code, 0, whoami.stderr);
    t.equal(JSON.parse(whoami.stdout).status.userInfo.username, 'demo@example.com');
    const pods = await stack.kubectl(kc, ['get', 'pods', '-n', 'demo']);
    t.equal(pods.code, 0, pods.stderr);
    const elsewhere = await stack.kubectl(kc, ['get', 'pods', '-n', 'default']);
    t.match(elsewhere.stderr, /forbidden: User "demo@example.com" cannot list resource "pods"/);
  });
}
