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
import { parseAllDocuments } from 'yaml';
import { parseConfig, parseYaml } from '../../src/config/load.js';
import { createCA, issueCertificate } from '../../dev/pki.js';
import { adminKubectl, kubectl, startKube } from './helpers/kube-stack.js';

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
        config.upstream.caFile,
        config.upstream.clientCertFile,
        config.upstream.clientKeyFile,
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

  t.test('config/kind.yaml and config/kube-apiserver.yaml have a valid shape', async (t) => {
    for (const name of ['kind.yaml', 'kube-apiserver.yaml']) {
      const file = join(import.meta.dirname, '../../config', name);
      t.doesNotThrow(() => parseConfig(parseYaml(readFileSync(file, 'utf8')), join(import.meta.dirname, '../../config'), { checkFiles: false }), name);
    }
  });
}
