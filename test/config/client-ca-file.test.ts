// listen.tls.clientCAFile is checked at load: a file that cannot verify client
// certificates is a config error naming the key and the fix, not a failure at the
// first handshake (nor a silent "no client certificates").
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createCA, issueCertificate } from '../../dev/pki.js';
import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';

const dir = await mkdtemp(join(tmpdir(), 'kfp-client-ca-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const ca = await createCA('client CA');
const leaf = await issueCertificate({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, commonName: 'alice', clientAuth: true });
const serving = await issueCertificate({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, commonName: 'localhost', serverAuth: true });
await Promise.all([
  writeFile(join(dir, 'ca.crt'), ca.certPem),
  writeFile(join(dir, 'leaf.crt'), leaf.certPem),
  writeFile(join(dir, 'garbage.crt'), 'not a certificate\n'),
  writeFile(join(dir, 'serving.crt'), serving.certPem),
  writeFile(join(dir, 'serving.key'), serving.keyPem),
]);

const load = (clientCAFile: string) =>
  parseConfig({ listen: { tls: { certFile: 'serving.crt', keyFile: 'serving.key', clientCAFile } }, upstream: { url: 'https://10.0.0.1:6443' } }, dir);

t.test('a CA bundle loads', async (t) => {
  t.equal(load('ca.crt').listen.tls.clientCAFile, join(dir, 'ca.crt'));
});

for (const [file, fix] of [
  ['leaf.crt', /is not a CA certificate .*name the CA that signed the client certificates/],
  ['garbage.crt', /holds no PEM certificate/],
] as const) {
  t.test(`${file} is refused naming listen.tls.clientCAFile`, async (t) => {
    const err = t.throws(() => load(file)) as ConfigError;
    t.type(err, ConfigError);
    t.match(err.problems, [{ path: 'listen.tls.clientCAFile', message: fix }]);
  });
}
