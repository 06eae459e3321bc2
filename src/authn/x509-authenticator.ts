/**
 * Client certificates (listen.tls.clientCAFile), giving the identity
 * kube-apiserver's x509 authenticator gives the same certificate
 * (k8s.io/apiserver@v0.37.2/pkg/authentication/request/x509/x509.go,
 * CommonNameUserConversion):
 * - user = the subject's CN (the last, as Go's pkix.Name keeps), groups = every O
 *   in order, uid = the subject's 1.3.6.1.4.1.57683.2 attribute (feature
 *   AllowParsingUserUIDFromCertAuth, on by default since 1.33; two of them or an
 *   empty one is an error), extra authentication.kubernetes.io/credential-id =
 *   "X509SHA256=" + hex SHA-256 of the leaf's DER;
 * - a verified certificate without a CN is no opinion (`absent`): kube goes on to
 *   the next authenticator;
 * - a certificate that does not verify (unknown CA, expired, not yet valid, not for
 *   clientAuth) is an error (`rejected`), which kube's union authenticator records
 *   and goes on past: a valid bearer token on the same request still wins.
 *
 * The listener asks for a certificate without requiring one and lets a bad one
 * finish the handshake; OpenSSL's verdict (`authorized`, checked against the CA
 * bundle with purpose sslclient, i.e. the clientAuth extended key usage) is read
 * here. kube verifies on every request with the current CA pool and clock, so
 * this does too, on top of OpenSSL's handshake-time verdict: the chain must still
 * end in a CA of the current bundle (the file may have changed under an open
 * connection, or a resumed session verified under the old one), and every
 * certificate in it must be valid now (a connection may outlive its certificate).
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { absent, authenticated, rejected, type Identity } from '../request/identity.js';
import { issuedBy } from '../config/ca-bundle.js';
import type { ClientCABundle } from '../tls/client-ca.js';
import type { Logger } from '../observe/logger.js';
import type { RequestAuthenticator } from './authenticator.js';

/** k8s.io/apiserver/pkg/authentication/user.CredentialIDKey */
export const CREDENTIAL_ID_KEY = 'authentication.kubernetes.io/credential-id';
/** k8s.io/apimachinery/pkg/apis/asn1.X509UID(): the subject attribute kube reads the uid from. */
const UID_OID = '1.3.6.1.4.1.57683.2';
const SYSTEM_GROUP_PREFIX = 'system:';

export interface ClientCertificateOptions {
  /** The current client CA bundle (it is reloaded when the file changes). */
  readonly clientCAs: () => ClientCABundle;
  /** authentication.x509.refuseSystemGroups */
  readonly refuseSystemGroups: boolean;
  readonly logger?: Logger;
  /** The clock, for tests. */
  readonly now?: () => number;
}

/** What one connection's certificate is worth, worked out once per connection and CA bundle. */
type Verdict =
  | { readonly kind: 'none' }
  | { readonly kind: 'invalid'; readonly why: string }
  | { readonly kind: 'verified'; readonly notBefore: number; readonly notAfter: number; readonly user: Identity | undefined; readonly why?: string };

interface Cached {
  readonly bundle: ClientCABundle;
  readonly verdict: Verdict;
}

export function createClientCertificateAuthenticator(options: ClientCertificateOptions): RequestAuthenticator {
  const now = options.now ?? Date.now;
  // Keyed by what outlives a request: the TLS socket over HTTP/1.1, the session over
  // HTTP/2 (whose req.socket is a new proxy object per request).
  const cache = new WeakMap<object, Cached>();
  return async (req) => {
    const bundle = options.clientCAs();
    const connection = ('stream' in req ? req.stream.session : undefined) ?? req.socket;
    let cached = cache.get(connection);
    if (cached?.bundle !== bundle) {
      cached = { bundle, verdict: verdictOf(req.socket as TLSSocket, bundle) };
      cache.set(connection, cached);
    }
    const { verdict } = cached;
    if (verdict.kind === 'none') return absent;
    let why = verdict.kind === 'invalid' ? verdict.why : undefined;
    if (verdict.kind === 'verified') {
      const at = now();
      if (at < verdict.notBefore) why = 'a certificate in the chain is not yet valid';
      else if (at > verdict.notAfter) why = 'a certificate in the chain has expired';
      else if (verdict.why) why = verdict.why;
    }
    if (why !== undefined) {
      options.logger?.debug({ why }, 'client certificate refused');
      return rejected('bad_client_certificate');
    }
    const user = verdict.kind === 'verified' ? verdict.user : undefined;
    if (!user) return absent;
    if (options.refuseSystemGroups && user.groups.some((group) => group.startsWith(SYSTEM_GROUP_PREFIX))) {
      return rejected('client_certificate_system_group');
    }
    return authenticated(user);
  };
}

function verdictOf(socket: TLSSocket, bundle: ClientCABundle): Verdict {
  const peer = socket.getPeerCertificate(true);
  if (!peer.raw) return { kind: 'none' };
  if (!socket.authorized) return { kind: 'invalid', why: String(socket.authorizationError) };
  const chain = chainOf(peer);
  // Node ends the chain with the CA it found in the bundle, so a byte comparison nearly
  // always settles it; signatures are checked only when the bundle changed since the handshake.
  const anchored =
    chain.some((cert) => bundle.certificates.some((ca) => ca.raw.equals(cert.raw))) ||
    chain.some((cert) => {
      const x509 = new X509Certificate(cert.raw);
      return bundle.certificates.some((ca) => issuedBy(x509, ca));
    });
  if (!anchored) return { kind: 'invalid', why: 'the chain no longer ends in a CA of clientCAFile' };
  const notBefore = Math.max(...chain.map((cert) => Date.parse(cert.valid_from)));
  const notAfter = Math.min(...chain.map((cert) => Date.parse(cert.valid_to)));
  try {
    return { kind: 'verified', notBefore, notAfter, user: userOf(peer) };
  } catch (err) {
    return { kind: 'verified', notBefore, notAfter, user: undefined, why: (err as Error).message };
  }
}

/** The verified chain, leaf first, as Node gives it (the sent chain, then the CA from the bundle). */
function chainOf(peer: DetailedPeerCertificate): DetailedPeerCertificate[] {
  const chain: DetailedPeerCertificate[] = [];
  // A root is its own issuer; Node links it to itself.
  for (let cert: DetailedPeerCertificate | undefined = peer; cert?.raw && !chain.includes(cert); cert = cert.issuerCertificate) chain.push(cert);
  return chain;
}

/** kube's CommonNameUserConversion; undefined for no CN, throws for a malformed uid. */
function userOf(peer: DetailedPeerCertificate): Identity | undefined {
  const subject = peer.subject as unknown as Record<string, string | string[] | undefined>;
  const username = values(subject.CN).at(-1) ?? '';
  if (username === '') return undefined;
  const uids = values(subject[UID_OID]);
  if (uids.length > 1) throw new Error('expected 1 UID, but found multiple');
  if (uids[0] === '') throw new Error('UID cannot be an empty string');
  const fingerprint = createHash('sha256').update(peer.raw).digest('hex');
  return {
    username,
    ...(uids[0] !== undefined && { uid: uids[0] }),
    groups: values(subject.O),
    extra: { [CREDENTIAL_ID_KEY]: [`X509SHA256=${fingerprint}`] },
    authMethod: 'x509',
  };
}

function values(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : [value].flat();
}

