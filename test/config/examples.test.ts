import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseConfig, parseYaml } from '../../src/config/load.js';

const CONFIG_DIR = fileURLToPath(new URL('../../config/', import.meta.url));
const REPO = join(CONFIG_DIR, '..');

/** The examples name files of other machines (kubeadm's pki) or made at run time (certs/dev): check the shape only. */
const load = (name: string) => parseConfig(parseYaml(readFileSync(join(CONFIG_DIR, name), 'utf8')), CONFIG_DIR, { checkFiles: false });

t.test('config/quickstart.yaml is valid and names the dev PKI', async (t) => {
  const config = load('quickstart.yaml');
  t.match(config, {
    listen: { address: '127.0.0.1:8443', healthAddress: '127.0.0.1:8081', tls: { certFile: join(REPO, 'certs/dev/serving.crt') } },
    upstream: {
      url: 'https://127.0.0.1:6443',
      caFile: join(REPO, 'certs/dev/upstream-ca.crt'),
      clientCertFile: join(REPO, 'certs/dev/front-proxy-client.crt'),
      clientKeyFile: join(REPO, 'certs/dev/front-proxy-client.key'),
    },
  });
  t.match(config.authentication.jwt, [
    {
      issuer: { url: 'https://127.0.0.1:5556', audiences: ['kubernetes'], certificateAuthorityFile: join(REPO, 'certs/dev/serving-ca.crt') },
      claimMappings: { username: { claim: 'email', prefix: '' }, groups: { claim: 'groups', prefix: 'oidc:' }, uid: { claim: 'sub' } },
    },
  ]);
});

t.test('config/kube-apiserver.yaml is valid and uses kubeadm front-proxy-client', async (t) => {
  const config = load('kube-apiserver.yaml');
  t.equal(config.upstream!.clientCertFile, '/etc/kubernetes/pki/front-proxy-client.crt');
  t.equal(config.upstream!.clientKeyFile, '/etc/kubernetes/pki/front-proxy-client.key');
  t.equal(config.authentication.jwt.length, 1);
});

t.test('every example in config/ is valid', async (t) => {
  const { readdirSync } = await import('node:fs');
  const files = readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.yaml'));
  t.ok(files.includes('sso-gateway.yaml'));
  for (const file of files) t.doesNotThrow(() => load(file), file);
});

t.test('config/sso-gateway.yaml fronts several apps with their own rules, one login over Redis', async (t) => {
  const config = load('sso-gateway.yaml');
  t.equal(config.upstream, undefined, 'routes, no default upstream');
  t.same(
    config.routes!.map((r) => [r.name, r.host, r.pathPrefix, r.public]),
    [
      ['finance', 'finance.example.com', '/', false],
      ['finance-assets', 'finance.example.com', '/assets', true],
      ['hr', 'hr.example.com', '/', false],
      ['grafana', 'grafana.example.com', '/', false],
      ['wiki', 'wiki.example.com', '/', false],
      ['partner', 'apps.partner.org', '/', false],
    ],
  );
  t.match(config.routes![2], { upstream: { identity: 'application', passAccessToken: true }, allow: { groups: ['hr'], claims: { hd: 'example.com' } } });
  t.match(config.authentication.session, { store: { type: 'redis' }, cookie: { domain: '.example.com' } });
});
