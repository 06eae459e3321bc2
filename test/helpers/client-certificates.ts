/**
 * Client certificates of every shape the x509 tests need (dev/pki.ts makes
 * only the dev PKI's own): CAs without a path length limit (so they can sign
 * intermediates), intermediates, and leaves with any subject, usages and
 * validity, each with a fresh ECDSA P-256 key.
 */
import 'reflect-metadata';
import { createPrivateKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const EC = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' };
const HOUR = 3_600_000;

export interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface LeafOptions {
  /** An RFC 4514 name, e.g. 'O=b, O=a, CN=alice' (written in this order). */
  readonly subject: string;
  /** Default: clientAuth only; [] for no extended key usage extension at all. */
  readonly usages?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function signingKey(pem: string): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' }), EC, false, ['sign']);
}

/** A self-signed root CA; `subject` lets a test copy another CA's name. */
export async function rootCA(subject = 'CN=test client CA'): Promise<Issued> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: subject,
    keys,
    signingAlgorithm: SIGNING,
    notBefore: new Date(Date.now() - HOUR),
    notAfter: new Date(Date.now() + 24 * HOUR),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: `${cert.toString('pem')}\n`, keyPem: await keyPem(keys.privateKey) };
}

/** The same CA renewed: a new certificate for its name and key (what a CA rotation that keeps the key does). */
export async function renewedCA(ca: Issued): Promise<Issued> {
  const old = new x509.X509Certificate(ca.certPem);
  const keys = { privateKey: await signingKey(ca.keyPem), publicKey: await old.publicKey.export(EC, ['verify']) };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: old.subject,
    keys,
    signingAlgorithm: SIGNING,
    notBefore: new Date(Date.now() - HOUR / 2),
    notAfter: new Date(Date.now() + 48 * HOUR),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: `${cert.toString('pem')}\n`, keyPem: ca.keyPem };
}

async function issue(ca: Issued, subject: string, notBefore: Date, notAfter: Date, extensions: x509.Extension[]): Promise<Issued> {
  const issuer = new x509.X509Certificate(ca.certPem);
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    subject,
    issuer: issuer.subject,
    publicKey: keys.publicKey,
    signingKey: await signingKey(ca.keyPem),
    signingAlgorithm: SIGNING,
    notBefore,
    notAfter,
    extensions: [
      ...extensions,
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey),
    ],
  });
  return { certPem: `${cert.toString('pem')}\n`, keyPem: await keyPem(keys.privateKey) };
}

/** An intermediate CA signed by `ca`. */
export function intermediateCA(ca: Issued, subject = 'CN=test intermediate CA'): Promise<Issued> {
  return issue(ca, subject, new Date(Date.now() - HOUR), new Date(Date.now() + 24 * HOUR), [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
  ]);
}

/** A leaf signed by `ca`: clientAuth, valid from an hour ago for a day, unless told otherwise. */
export function leaf(ca: Issued, options: LeafOptions): Promise<Issued> {
  const usages = options.usages ?? [x509.ExtendedKeyUsage.clientAuth];
  return issue(ca, options.subject, options.notBefore ?? new Date(Date.now() - HOUR), options.notAfter ?? new Date(Date.now() + 24 * HOUR), [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    ...(usages.length > 0 ? [new x509.ExtendedKeyUsageExtension([...usages])] : []),
  ]);
}

export const usage = { clientAuth: x509.ExtendedKeyUsage.clientAuth, serverAuth: x509.ExtendedKeyUsage.serverAuth };
