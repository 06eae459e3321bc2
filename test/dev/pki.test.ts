import t from 'tap';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevPki, issueCertificate, type DevPki } from '../../dev/pki.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

const dir = await mkdtemp(join(tmpdir(), 'kfp-pki-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const cert = async (path: string) => new X509Certificate(await readFile(path));

/** The key file holds the private half of the certificate's public key. */
async function keyMatches(certPath: string, keyPath: string): Promise<boolean> {
  const pub = createPublicKey(createPrivateKey(await readFile(keyPath))).export({ type: 'spki', format: 'der' });
  return pub.equals((await cert(certPath)).publicKey.export({ type: 'spki', format: 'der' }));
}

const pki: DevPki = await ensureDevPki(dir);

t.test('each leaf chains to its CA with the right names and usages', async (t) => {
  const chains = [
    [pki.servingCA, pki.servingCAKey, pki.servingCert, pki.servingKey],
    [pki.frontProxyCA, pki.frontProxyCAKey, pki.frontProxyClientCert, pki.frontProxyClientKey],
    [pki.upstreamCA, pki.upstreamCAKey, pki.upstreamCert, pki.upstreamKey],
  ] as const;
  for (const [caPath, caKeyPath, leafPath, leafKeyPath] of chains) {
    const ca = await cert(caPath);
    const leaf = await cert(leafPath);
    t.ok(ca.ca, `${caPath} is a CA`);
    t.ok(ca.verify(ca.publicKey), 'CA is self-signed');
    t.notOk(leaf.ca, `${leafPath} is not a CA`);
    t.ok(leaf.checkIssued(ca), 'leaf issued by its CA');
    t.ok(leaf.verify(ca.publicKey), 'leaf signature verifies with the CA key');
    t.ok(await keyMatches(caPath, caKeyPath), 'CA key matches');
    t.ok(await keyMatches(leafPath, leafKeyPath), 'leaf key matches');
    t.match(await readFile(leafKeyPath, 'utf8'), /^-----BEGIN PRIVATE KEY-----/, 'PKCS#8 PEM');
    t.equal((await stat(leafKeyPath)).mode & 0o077, 0, 'key not readable by others');
    t.ok(Date.parse(leaf.validFrom) < Date.now() - 50 * 60_000, 'notBefore is in the past');
  }
  t.notOk((await cert(pki.servingCert)).checkIssued(await cert(pki.frontProxyCA)), 'CAs are distinct');

  for (const path of [pki.servingCert, pki.upstreamCert]) {
    const c = await cert(path);
    t.same(c.keyUsage, [SERVER_AUTH]);
    t.ok(c.checkHost('localhost'));
    t.ok(c.checkIP('127.0.0.1'));
    t.ok(c.checkIP('::1'));
  }
  const client = await cert(pki.frontProxyClientCert);
  t.equal(client.subject, 'CN=front-proxy-client');
  t.same(client.keyUsage, [CLIENT_AUTH]);
});

t.test('a second call changes nothing; a missing file regenerates what depends on it', async (t) => {
  const files = Object.values(pki).filter((p) => p !== pki.dir);
  const before = await Promise.all(files.map((f) => readFile(f, 'utf8')));
  await ensureDevPki(dir);
  t.same(await Promise.all(files.map((f) => readFile(f, 'utf8'))), before, 'idempotent');

  const oldServing = await readFile(pki.servingCert, 'utf8');
  const oldFrontProxyCA = await readFile(pki.frontProxyCA, 'utf8');
  await rm(pki.frontProxyCAKey);
  await ensureDevPki(dir);
  t.not(await readFile(pki.frontProxyCA, 'utf8'), oldFrontProxyCA, 'the CA pair was remade');
  t.ok((await cert(pki.frontProxyClientCert)).checkIssued(await cert(pki.frontProxyCA)), 'and its leaf re-signed');
  t.equal(await readFile(pki.servingCert, 'utf8'), oldServing, 'other chains untouched');
});

t.test('concurrent calls on a fresh folder agree on one consistent set', async (t) => {
  const fresh = join(dir, 'concurrent');
  const [a] = await Promise.all([ensureDevPki(fresh), ensureDevPki(fresh), ensureDevPki(fresh)]);
  t.ok((await cert(a.servingCert)).checkIssued(await cert(a.servingCA)));
  t.ok(await keyMatches(a.servingCert, a.servingKey));
});

t.test('issueCertificate makes test certificates', async (t) => {
  const caCertPem = await readFile(pki.frontProxyCA, 'utf8');
  const caKeyPem = await readFile(pki.frontProxyCAKey, 'utf8');
  const wrong = await issueCertificate({ caCertPem, caKeyPem, commonName: 'intruder', clientAuth: true });
  const c = new X509Certificate(wrong.certPem);
  t.equal(c.subject, 'CN=intruder');
  t.ok(c.checkIssued(new X509Certificate(caCertPem)));
  t.equal(c.subjectAltName, undefined);

  const expired = await issueCertificate({
    caCertPem,
    caKeyPem,
    commonName: 'front-proxy-client',
    clientAuth: true,
    notBefore: new Date(Date.now() - 7_200_000),
    notAfter: new Date(Date.now() - 3_600_000),
  });
  t.ok(Date.parse(new X509Certificate(expired.certPem).validTo) < Date.now(), 'expired');
});
