/**
 * listen.tls.clientCAFile: the CA bundle that verifies client certificates, as
 * kube-apiserver's --client-ca-file. Read like client-go's cert.ParseCertsPEM
 * (k8s.io/client-go/util/cert/pem.go: every CERTIFICATE block, other blocks
 * skipped), and checked harder than kube does, because OpenSSL (which verifies
 * the handshake) and Go's x509 differ on two inputs that kube takes silently:
 * - a certificate that is not a CA: Go trusts a leaf found in the pool as
 *   itself; OpenSSL does not. Neither signs anything, so it is refused.
 * - an intermediate CA without its root: Go takes every certificate in the pool
 *   as a trust anchor; OpenSSL (Node 20 has no partial-chain option) needs the
 *   chain to end in a self-signed root, so the bundle must hold that root.
 */
import { X509Certificate } from 'node:crypto';

/** A clientCAFile that cannot verify client certificates; the message says why and what to do. */
export class ClientCAFileError extends Error {
  override readonly name = 'ClientCAFileError';
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/g;

/** The CA certificates of a PEM bundle, checked as the header comment says. */
export function parseClientCABundle(pem: string): X509Certificate[] {
  const blocks = pem.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) throw new ClientCAFileError('holds no PEM certificate ("-----BEGIN CERTIFICATE-----"); name the CA bundle that signs client certificates');
  const certificates = blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new ClientCAFileError(`certificate ${index + 1} cannot be parsed (${(err as Error).message})`);
    }
  });
  for (const cert of certificates) {
    if (!cert.ca) {
      throw new ClientCAFileError(
        `"${oneLine(cert.subject)}" is not a CA certificate (no basicConstraints CA:TRUE); name the CA that signed the client certificates, not a client certificate itself`,
      );
    }
    if (!selfSigned(cert) && !certificates.some((issuer) => issuer !== cert && issuedBy(cert, issuer))) {
      throw new ClientCAFileError(
        `"${oneLine(cert.subject)}" is an intermediate CA whose issuer "${oneLine(cert.issuer)}" is not in the file; append the root CA (and any CA between) to the bundle`,
      );
    }
  }
  return certificates;
}

/** Whether `issuer` issued `cert`: names and key identifiers match and its key verifies the signature. */
export function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

function selfSigned(cert: X509Certificate): boolean {
  return issuedBy(cert, cert);
}

function oneLine(name: string): string {
  return name.split('\n').join(', ');
}
