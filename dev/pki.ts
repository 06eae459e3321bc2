/**
 * The dev PKI: three small certificate authorities shaped like a kubeadm
 * cluster's, so the quick start and the tests exercise the same certificate
 * checks a real deployment does.
 *
 * - serving CA → `serving.crt`: the proxy's listener and the dev OIDC issuer;
 * - front-proxy CA → `front-proxy-client.crt` (CN=front-proxy-client, clientAuth):
 *   what kube-apiserver's `--requestheader-client-ca-file` trusts;
 * - upstream CA → `upstream-serving.crt`: the dev upstream's serving certificate.
 */
// @peculiar/x509 resolves its services through tsyringe, which needs the
// Reflect metadata API before the library is loaded.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate as NodeX509, createPrivateKey, webcrypto } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile, open, stat } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

x509.cryptoProvider.set(webcrypto);

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const HOUR = 3_600_000;
const YEAR = 365 * 24 * HOUR;
const LOCAL_DNS = ['localhost'];
const LOCAL_IPS = ['127.0.0.1', '::1'];

/** Absolute paths of every dev PKI file (PEM; keys are unencrypted PKCS#8). */
export interface DevPki {
  readonly dir: string;
  readonly servingCA: string;
  readonly servingCAKey: string;
  readonly servingCert: string;
  readonly servingKey: string;
  readonly frontProxyCA: string;
  readonly frontProxyCAKey: string;
  readonly frontProxyClientCert: string;
  readonly frontProxyClientKey: string;
  readonly upstreamCA: string;
  readonly upstreamCAKey: string;
  readonly upstreamCert: string;
  readonly upstreamKey: string;
}

/** What {@link issueCertificate} should put in a leaf certificate. */
export interface IssueOptions {
  readonly caCertPem: string;
  /** The CA's ECDSA P-256 private key (PKCS#8 or SEC1 PEM). */
  readonly caKeyPem: string;
  readonly commonName: string;
  readonly clientAuth?: boolean;
  readonly serverAuth?: boolean;
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
  /** Default: one hour ago, so a slightly slow clock elsewhere still accepts it. */
  readonly notBefore?: Date;
  /** Default: one year from now. */
  readonly notAfter?: Date;
}

/** A certificate and its private key, both PEM. */
export interface CertAndKey {
  readonly certPem: string;
  readonly keyPem: string;
}

async function newKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importSigningKey(pem: string): Promise<webcrypto.CryptoKey> {
  // Normalise through node:crypto so SEC1 ("EC PRIVATE KEY") files work too.
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, EC_KEY, false, ['sign']);
}

function validity(notBefore?: Date, notAfter?: Date): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: notBefore ?? new Date(now - HOUR), notAfter: notAfter ?? new Date(now + YEAR) };
}

/** A self-signed ECDSA P-256 CA certificate, valid for a year. */
export async function createCA(commonName: string): Promise<CertAndKey> {
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ CN: [commonName] }],
    keys,
    signingAlgorithm: SIGNING,
    ...validity(),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/**
 * Issues a leaf certificate signed by the given CA, with a fresh ECDSA P-256
 * key. Tests use it for certificates the dev PKI does not make: a client
 * certificate with the wrong CN, an expired one, a second serving certificate.
 */
export async function issueCertificate(opts: IssueOptions): Promise<CertAndKey> {
  const ca = new x509.X509Certificate(opts.caCertPem);
  const [caKey, keys] = await Promise.all([importSigningKey(opts.caKeyPem), newKeyPair()]);
  const usages: string[] = [];
  if (opts.serverAuth) usages.push(x509.ExtendedKeyUsage.serverAuth);
  if (opts.clientAuth) usages.push(x509.ExtendedKeyUsage.clientAuth);
  const names: x509.JsonGeneralName[] = [
    ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
  ];
  if (usages.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(usages));
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  const cert = await x509.X509CertificateGenerator.create({
    subject: [{ CN: [opts.commonName] }],
    issuer: ca.subjectName,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGNING,
    ...validity(opts.notBefore, opts.notAfter),
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/** What one CA of the dev PKI signs. */
interface Chain {
  readonly caName: string;
  readonly caBase: string;
  readonly leafBase: string;
  readonly leaf: Omit<IssueOptions, 'caCertPem' | 'caKeyPem'>;
}

const chains: readonly Chain[] = [
  {
    caName: 'kube-front-proxy dev serving CA',
    caBase: 'serving-ca',
    leafBase: 'serving',
    leaf: { commonName: 'localhost', serverAuth: true, dnsNames: LOCAL_DNS, ips: LOCAL_IPS },
  },
  {
    caName: 'front-proxy-ca',
    caBase: 'front-proxy-ca',
    leafBase: 'front-proxy-client',
    leaf: { commonName: 'front-proxy-client', clientAuth: true },
  },
  {
    caName: 'kube-front-proxy dev upstream CA',
    caBase: 'upstream-ca',
    leafBase: 'upstream-serving',
    leaf: { commonName: 'localhost', serverAuth: true, dnsNames: LOCAL_DNS, ips: LOCAL_IPS },
  },
];

/** A pair is usable when both files exist and the certificate has not expired. */
async function pairUsable(dir: string, base: string): Promise<boolean> {
  try {
    const [cert] = await Promise.all([readFile(join(dir, `${base}.crt`)), stat(join(dir, `${base}.key`))]);
    return new Date(new NodeX509(cert).validTo).getTime() > Date.now();
  } catch {
    return false;
  }
}

/** Writes via a temporary file and rename, so a reader never sees half a PEM. */
async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

async function writePair(dir: string, base: string, pair: CertAndKey): Promise<void> {
  await writeAtomic(join(dir, `${base}.key`), pair.keyPem, 0o600);
  await writeAtomic(join(dir, `${base}.crt`), pair.certPem, 0o644);
}

/**
 * Tap runs test files in parallel, and several may ask for the same folder:
 * without a lock two of them could interleave a CA from one run with a leaf
 * from the other. A lock file older than 30 s is a crashed run's and is taken over.
 */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, '.pki.lock');
  for (;;) {
    try {
      await (await open(lock, 'wx')).close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 30_000) await unlink(lock).catch(() => undefined);
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => undefined);
  }
}

/**
 * Makes sure `dir` holds the dev PKI and returns its absolute paths. Only what
 * is missing (or expired) is generated: a pair with a file missing is made
 * anew, and so is everything signed by a CA that was made anew. Running it
 * again changes nothing.
 */
export async function ensureDevPki(dir: string): Promise<DevPki> {
  const abs = resolve(dir);
  await mkdir(abs, { recursive: true });
  await withLock(abs, async () => {
    for (const chain of chains) {
      let ca: CertAndKey | undefined;
      if (!(await pairUsable(abs, chain.caBase))) {
        ca = await createCA(chain.caName);
        await writePair(abs, chain.caBase, ca);
      }
      if (ca || !(await pairUsable(abs, chain.leafBase))) {
        ca ??= {
          certPem: await readFile(join(abs, `${chain.caBase}.crt`), 'utf8'),
          keyPem: await readFile(join(abs, `${chain.caBase}.key`), 'utf8'),
        };
        await writePair(abs, chain.leafBase, await issueCertificate({ ...chain.leaf, caCertPem: ca.certPem, caKeyPem: ca.keyPem }));
      }
    }
  });
  const at = (name: string) => join(abs, name);
  return {
    dir: abs,
    servingCA: at('serving-ca.crt'),
    servingCAKey: at('serving-ca.key'),
    servingCert: at('serving.crt'),
    servingKey: at('serving.key'),
    frontProxyCA: at('front-proxy-ca.crt'),
    frontProxyCAKey: at('front-proxy-ca.key'),
    frontProxyClientCert: at('front-proxy-client.crt'),
    frontProxyClientKey: at('front-proxy-client.key'),
    upstreamCA: at('upstream-ca.crt'),
    upstreamCAKey: at('upstream-ca.key'),
    upstreamCert: at('upstream-serving.crt'),
    upstreamKey: at('upstream-serving.key'),
  };
}
