// deploy/kubernetes: every overlay renders with `kubectl kustomize`, its
// configuration is valid for our loader (shape only: the files are the pod's),
// every file the configuration names is on a volume the Deployment mounts, and
// the real apiserver accepts every object in a server-side dry run.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import { parseAllDocuments } from 'yaml';
import { parseConfig, parseYaml } from '../../src/config/load.js';
import { createCA, issueCertificate } from '../../dev/pki.js';
import { adminKubectl, kubectl, serviceAccountToken, startKube } from './helpers/kube-stack.js';

const DEPLOY = join(import.meta.dirname, '../../deploy/kubernetes');

/** Operator-provided files (secrets/*) that overlays read: real certificates (the apiserver checks a TLS Secret's PEM), written into a copy of the tree. */
async function standIns(): Promise<Record<string, string>> {
  const ca = await createCA('stand-in CA');
  const signed = { caCertPem: ca.certPem, caKeyPem: ca.keyPem };
  const serving = await issueCertificate({ ...signed, commonName: 'kube.example.com', serverAuth: true, dnsNames: ['kube.example.com'] });
  const client = await issueCertificate({ ...signed, commonName: 'front-proxy-client', clientAuth: true });
  return {
    'serving.crt': serving.certPem,
    'serving.key': serving.keyPem,
    'front-proxy-client.crt': client.certPem,
    'front-proxy-client.key': client.keyPem,
    'client-secret': randomBytes(24).toString('base64'),
    'cookie-secret': randomBytes(48).toString('base64'),
  };
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
}

interface ProjectedSource {
  serviceAccountToken?: { path: string; expirationSeconds?: number; audience?: string };
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
}

const cluster = await startKube(t);
if (cluster) {
  const work = await mkdtemp(join(tmpdir(), 'kfp-deploy-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const tree = join(work, 'kubernetes');
  await cp(DEPLOY, tree, { recursive: true });
  const overlays = ['base', ...(await readdir(join(tree, 'overlays'))).map((o) => `overlays/${o}`)];
  const files = await standIns();
  for (const overlay of overlays) {
    const secrets = join(tree, overlay, 'secrets');
    if (await readdir(secrets).then(() => true, () => false)) {
      for (const [name, text] of Object.entries(files)) await writeFile(join(secrets, name), text);
    }
  }
  const render = async (overlay: string): Promise<{ yaml: string; objects: K8sObject[] }> => {
    const { code, stdout, stderr } = await kubectl(['kustomize', join(tree, overlay)], join(cluster.dir, 'kubectl-cache'));
    if (code !== 0) throw new Error(`kubectl kustomize ${overlay} failed: ${stderr}`);
    return { yaml: stdout, objects: parseAllDocuments(stdout).map((d) => d.toJS() as K8sObject) };
  };

  // A server-side dry run of objects in a namespace that does not exist fails, so the namespace is made for real.
  const namespace = (await render('base')).objects.find((o) => o.kind === 'Namespace')!;
  const nsFile = join(work, 'namespace.json');
  await writeFile(nsFile, JSON.stringify(namespace));
  const made = await adminKubectl(cluster, ['apply', '-f', nsFile]);
  t.equal(made.code, 0, `namespace ${namespace.metadata.name} created: ${made.stderr}`);

  for (const overlay of overlays) {
    t.test(overlay, async (t) => {
      const { objects } = await render(overlay);
      const kinds = objects.map((o) => o.kind);
      for (const kind of ['Namespace', 'ServiceAccount', 'ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget', 'NetworkPolicy']) {
        t.ok(kinds.includes(kind), `has a ${kind}`);
      }
      for (const o of objects) t.equal(o.metadata.namespace ?? 'kube-front-proxy', 'kube-front-proxy', `${o.kind}/${o.metadata.name} is in the namespace`);

      const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'kube-front-proxy')!;
      const pod = deployment.spec.template.spec;
      const container = pod.containers[0];
      t.ok(deployment.spec.replicas >= 2, 'at least 2 replicas');
      t.match(container.livenessProbe.httpGet, { path: '/healthz', port: 'health' });
      t.match(container.readinessProbe.httpGet, { path: '/readyz', port: 'health' });
      t.same(container.ports.find((p: { name: string }) => p.name === 'health').containerPort, 8081, 'probes on the health port 8081');
      t.match(container.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
      t.ok(pod.affinity.podAntiAffinity, 'pod anti-affinity');
      t.ok(container.resources.requests && container.resources.limits, 'resources');

      // The configuration: valid for our loader, and every file it names is on a mounted volume.
      const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('kube-front-proxy-config'))!;
      const configPath = container.args[container.args.indexOf('--config') + 1] as string;
      const mounts = container.volumeMounts as Array<{ name: string; mountPath: string }>;
      const configMount = mounts.find((m) => configPath.startsWith(`${m.mountPath}/`))!;
      const configVolume = pod.volumes.find((v: { name: string }) => v.name === configMount.name);
      t.equal(configVolume.configMap.name, configMap.metadata.name, '--config is read from the generated ConfigMap');
      const text = configMap.data![configPath.slice(configMount.mountPath.length + 1)];
      t.ok(text, `the ConfigMap holds ${configPath}`);
      const config = parseConfig(parseYaml(text), '/', { checkFiles: false });
      t.pass('the configuration is valid for src/config/load.ts (shape only)');
      const files = [
        config.listen.tls.certFile,
        config.listen.tls.keyFile,
        config.upstream!.caFile,
        config.upstream!.clientCertFile,
        config.upstream!.clientKeyFile,
        config.upstream!.tokenFile,
        ...JSON.stringify(config).match(/"[a-zA-Z]*[sS]ecretFile":"[^"]+"/g)?.map((m) => m.split('":"')[1].slice(0, -1)) ?? [],
      ].filter((f): f is string => typeof f === 'string');
      for (const file of files) {
        const mount = mounts.find((m) => file.startsWith(`${m.mountPath}/`));
        t.ok(mount, `${file} is on a mounted volume`);
        const volume = pod.volumes.find((v: { name: string }) => v.name === mount?.name);
        const key = file.slice((mount?.mountPath.length ?? 0) + 1);
        if (volume?.secret) {
          const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === volume.secret.secretName);
          if (secret) t.ok(secret.data?.[key], `secret ${secret.metadata.name} has ${key}`);
          else t.comment(`${file}: secret ${volume.secret.secretName} is created outside kustomize (see the base kustomization.yaml)`);
        } else if (volume?.configMap) {
          t.equal(volume.configMap.name === 'kube-root-ca.crt' ? 'ca.crt' : key, key, `${file} from ConfigMap ${volume.configMap.name}`);
        } else if (volume?.projected) {
          const paths = (volume.projected.sources as ProjectedSource[]).flatMap((s) => [s.serviceAccountToken?.path, ...(s.configMap?.items?.map((i) => i.path) ?? [])]);
          t.ok(paths.includes(key), `${file}: the projected volume ${volume.name} has ${key}`);
        }
      }
      t.equal(config.listen.healthAddress, '0.0.0.0:8081', 'the kubelet can reach the health port');

      // Server-side dry run of everything the apiserver knows the kind of.
      const unknownKinds = objects.filter((o) => o.apiVersion.startsWith('monitoring.coreos.com/'));
      const known = objects.filter((o) => !unknownKinds.includes(o));
      const file = join(work, `${overlay.replace('/', '-')}.json`);
      await writeFile(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: known }));
      const dryRun = await adminKubectl(cluster, ['apply', '--dry-run=server', '-f', file]);
      t.equal(dryRun.code, 0, `server-side dry run: ${dryRun.stderr}`);
      t.equal(dryRun.stdout.trim().split('\n').length, known.length, dryRun.stdout);
      t.notMatch(dryRun.stderr, /Warning/, 'no warnings (deprecations, Pod Security "restricted" violations)');

      for (const monitor of unknownKinds) {
        // The Prometheus Operator's CRDs are not in this apiserver: checked against the Service instead.
        const apply = join(work, `${overlay.replace('/', '-')}-monitor.json`);
        await writeFile(apply, JSON.stringify(monitor));
        const refused = await adminKubectl(cluster, ['apply', '--dry-run=server', '-f', apply]);
        t.match(refused.stderr, /no matches for kind "ServiceMonitor"/, 'not validated by the apiserver: its CRD is not installed here');
        const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'kube-front-proxy')!;
        t.match(service.metadata.labels, monitor.spec.selector.matchLabels, 'the ServiceMonitor selects the Service');
        for (const endpoint of monitor.spec.endpoints) {
          t.ok(service.spec.ports.some((p: { name: string }) => p.name === endpoint.port), `the Service has port ${endpoint.port}`);
          t.equal(endpoint.path, '/metrics');
        }
        const policy = objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'kube-front-proxy')!;
        t.ok(
          policy.spec.ingress.some((r: { from?: Array<{ namespaceSelector?: unknown }> }) => r.from?.some((f) => f.namespaceSelector)),
          'the NetworkPolicy admits the monitoring namespace',
        );
      }
    });
  }

  t.test('overlays/token-review: the proxy may review tokens, with a mounted, rotated service-account token', async (t) => {
    const { objects } = await render('overlays/token-review');
    const binding = objects.find((o) => o.kind === 'ClusterRoleBinding');
    t.match(binding, { roleRef: { kind: 'ClusterRole', name: 'system:auth-delegator' }, subjects: [{ kind: 'ServiceAccount', name: 'kube-front-proxy', namespace: 'kube-front-proxy' }] });
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    t.equal(deployment.spec.template.spec.automountServiceAccountToken, true, 'the kubelet mounts the projected token TokenReview is called with');
    t.equal(deployment.spec.template.spec.serviceAccountName, 'kube-front-proxy');
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('kube-front-proxy-config'))!;
    const config = parseConfig(parseYaml(configMap.data!['config.yaml']), '/', { checkFiles: false });
    t.ok(config.authentication.tokenReview, 'authentication.tokenReview is on');
    t.equal(config.authentication.tokenReview?.kubeconfig, undefined, 'in-cluster: no kubeconfig');
  });

  t.test('overlays/managed: impersonation as the service account, with exactly the rights it needs', async (t) => {
    const { objects } = await render('overlays/managed');
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('kube-front-proxy-config'))!;
    const config = parseConfig(parseYaml(configMap.data!['config.yaml']), '/', { checkFiles: false });
    t.equal(config.upstream!.identity, 'impersonation');
    t.equal(config.upstream!.clientCertFile, undefined, 'no upstream client certificate');
    t.notOk(objects.some((o) => o.kind === 'Secret' && o.metadata.name === 'kube-front-proxy-upstream'), 'no front-proxy Secret');
    const pod = objects.find((o) => o.kind === 'Deployment')!.spec.template.spec;
    t.notOk(pod.volumes.some((v: { secret?: { secretName: string } }) => v.secret?.secretName === 'kube-front-proxy-upstream'), 'no front-proxy Secret volume');
    const token = (pod.volumes as Array<{ projected?: { sources: ProjectedSource[] } }>)
      .flatMap((v) => v.projected?.sources ?? [])
      .find((s) => s.serviceAccountToken)?.serviceAccountToken;
    t.ok(token, 'a projected service-account token');
    t.equal(token?.audience, undefined, "the token's audience is kube-apiserver's own");
    t.ok(token?.expirationSeconds !== undefined && token.expirationSeconds !== 3607, 'a lifetime kube-apiserver does not extend to a year (3607 s is the automount value it extends)');

    const role = objects.find((o) => o.kind === 'ClusterRole') as K8sObject & { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };
    t.same(role.rules.flatMap((r) => r.verbs), role.rules.map(() => 'impersonate'), 'impersonate is the only verb');
    const extraResources = role.rules.filter((r) => r.apiGroups.includes('authentication.k8s.io')).flatMap((r) => r.resources);
    for (const { key } of config.authentication.jwt.flatMap((j) => j.claimMappings.extra ?? [])) {
      t.ok(extraResources.includes(`userextras/${key}`), `the role may impersonate the mapped extra ${key}`);
    }
    t.match(objects.find((o) => o.kind === 'ClusterRoleBinding'), {
      roleRef: { kind: 'ClusterRole', name: role.metadata.name },
      subjects: [{ kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: 'kube-front-proxy' }],
    });

    // Applied for real, then used as the proxy uses it: the service account's token and Impersonate-* straight to kube-apiserver.
    const rbacFile = join(work, 'managed-rbac.json');
    const rbac = objects.filter((o) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind));
    await writeFile(rbacFile, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }));
    const applied = await adminKubectl(cluster, ['apply', '-f', rbacFile]);
    t.equal(applied.code, 0, `applied: ${applied.stderr}`);
    const bearer = await serviceAccountToken(cluster, 'kube-front-proxy', pod.serviceAccountName);
    const agent = new Agent({ connect: { ca: readFileSync(cluster.caFile, 'utf8') } });
    t.teardown(() => agent.close());
    const asProxy = async (method: string, path: string, impersonate: Record<string, string | string[]>) => {
      const res = await request(`${cluster.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', ...impersonate },
        body: method === 'POST' ? JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }) : undefined,
        dispatcher: agent,
      });
      return { status: res.statusCode, body: (await res.body.json()) as any };
    };
    const whoami = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
    const person = {
      'impersonate-user': 'alice@example.com',
      'impersonate-group': ['oidc:sre', 'oidc:dev'],
      'impersonate-uid': 'a1b2c3',
      // client-go's escaping of the key authentication.kubernetes.io/credential-id.
      'impersonate-extra-authentication.kubernetes.io%2fcredential-id': 'JTI=token-1',
    };
    const granted = await asProxy('POST', whoami, person);
    t.equal(granted.status, 201, JSON.stringify(granted.body));
    t.same(granted.body.status?.userInfo, {
      username: 'alice@example.com',
      uid: 'a1b2c3',
      groups: ['oidc:sre', 'oidc:dev', 'system:authenticated'],
      extra: { 'authentication.kubernetes.io/credential-id': ['JTI=token-1'] },
    }, 'kube-apiserver acts as the person: user, uid, groups and the credential-id extra');
    const audited = await cluster.auditEvent((e) => e.requestURI === whoami && e.impersonatedUser?.username === 'alice@example.com');
    t.equal(audited.user.username, `system:serviceaccount:kube-front-proxy:${pod.serviceAccountName}`, "kube's audit names the proxy's service account as user and the person as impersonatedUser");

    const otherExtra = await asProxy('POST', whoami, { ...person, 'impersonate-extra-example.com%2ftenant': 'a' });
    t.equal(otherExtra.status, 403, 'an extra key the role does not name is refused');
    t.match(otherExtra.body.message, /userextras\/example.com\/tenant/);
    const serviceAccount = await asProxy('POST', whoami, { 'impersonate-user': 'system:serviceaccount:kube-system:default' });
    t.equal(serviceAccount.status, 403, 'service accounts cannot be impersonated');
    t.match(serviceAccount.body.message, /serviceaccounts/);
    for (const path of ['/api/v1/namespaces/kube-front-proxy/pods', '/api/v1/namespaces/kube-system/secrets', '/apis/rbac.authorization.k8s.io/v1/clusterroles']) {
      const itself = await asProxy('GET', path, {});
      t.equal(itself.status, 403, `as itself the service account may not read ${path}`);
    }
    const alice = await asProxy('GET', '/api/v1/namespaces/kube-system/secrets', person);
    t.equal(alice.status, 403, 'impersonated, RBAC decides for the person (who has no grants here)');
    t.match(alice.body.message, /"alice@example.com"/);
  });

  t.test('config/kind.yaml and config/kube-apiserver.yaml have a valid shape', async (t) => {
    for (const name of ['kind.yaml', 'kube-apiserver.yaml']) {
      const file = join(import.meta.dirname, '../../config', name);
      t.doesNotThrow(() => parseConfig(parseYaml(readFileSync(file, 'utf8')), join(import.meta.dirname, '../../config'), { checkFiles: false }), name);
    }
  });
}
