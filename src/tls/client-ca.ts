/**
 * listen.tls.clientCAFile, read for the listener and the x509 authenticator;
 * the checks are config/ca-bundle.ts's, which also runs them at load.
 */
import { readFileSync } from 'node:fs';
import type { X509Certificate } from 'node:crypto';
import { parseClientCABundle } from '../config/ca-bundle.js';

export interface ClientCABundle {
  /** The file as read, for the TLS context's `ca`. */
  readonly pem: Buffer;
  readonly certificates: readonly X509Certificate[];
}

/** Reads and checks a client CA bundle; throws ClientCAFileError (or the fs error) when it cannot be used. */
export function readClientCABundle(file: string): ClientCABundle {
  const pem = readFileSync(file);
  return { pem, certificates: parseClientCABundle(pem.toString('latin1')) };
}

