/**
 * The seam every credential plugs into. A `RequestAuthenticator` reads one kind
 * of credential from a request; the chain asks each in turn, as kube-apiserver's
 * union authenticator does, and the first that finds its credential decides:
 * a request never mixes two (a bad bearer token is not rescued by a cookie).
 * A new credential (client certificates, TokenReview, a webhook) is one more
 * `RequestAuthenticator` in the list server.ts builds; nothing else changes.
 */
import type { ClientRequest, ClientResponse } from '../request/client.js';
import { absent, type AuthOutcome } from '../request/identity.js';

/** One kind of credential: its verdict, or `absent` when the request carries none of its kind. */
export type RequestAuthenticator = (req: ClientRequest, res: ClientResponse) => Promise<AuthOutcome>;

/** Verifies a bearer token (already stripped of its "Bearer " scheme). */
export interface TokenAuthenticator {
  authenticateToken(token: string): Promise<AuthOutcome>;
  /** True once everything needed to verify tokens is loaded (discovery, keys). */
  ready(): boolean;
  close(): Promise<void>;
}

/**
 * kube's union for the client certificate (k8s.io/apiserver pkg/authentication/request/union):
 * a valid certificate decides and no token is read; a bad one does not stop the rest, and is
 * the answer only when nothing else finds a credential.
 */
export function clientCertificateFirst(x509: RequestAuthenticator | undefined, rest: RequestAuthenticator): RequestAuthenticator {
  if (!x509) return rest;
  return async (req, res) => {
    const certificate = await x509(req, res);
    if (certificate.kind === 'authenticated') return certificate;
    const other = await rest(req, res);
    return other.kind === 'absent' ? certificate : other;
  };
}

/** The first authenticator that finds its credential decides; `absent` when none does. */
export function authenticatorChain(authenticators: readonly RequestAuthenticator[]): RequestAuthenticator {
  return async (req, res) => {
    for (const authenticate of authenticators) {
      const outcome = await authenticate(req, res);
      if (outcome.kind !== 'absent') return outcome;
    }
    return absent;
  };
}
