/**
 * Certificate files that may change under us (cert-manager, kubelet secret
 * volumes swap a symlink). We poll with stat, which follows symlinks and
 * survives atomic renames where fs.watch does not.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { readClientCABundle, type ClientCABundle } from './client-ca.js';

export interface KeyPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Reads a certificate and key and checks that they belong together; throws if not. */
export function readKeyPair(certFile: string, keyFile: string): KeyPair {
  const pair = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  createSecureContext(pair); // throws on a malformed file or a key that does not match
  return pair;
}

/** Calls onChange when any of the files' mtime or size changes. Returns the stop function. */
export function watchFiles(files: readonly string[], onChange: () => void, intervalMs = 1000): () => void {
  const listener = (curr: { mtimeMs: number; size: number }, prev: { mtimeMs: number; size: number }) => {
    if (curr.mtimeMs !== prev.mtimeMs || curr.size !== prev.size) onChange();
  };
  for (const file of files) watchFile(file, { interval: intervalMs, persistent: false }, listener);
  return () => {
    for (const file of files) unwatchFile(file, listener);
  };
}

/** What the client-facing listener serves: its key pair and, with listen.tls.clientCAFile, the client CA bundle. */
export interface ServingContext extends KeyPair {
  /** The client CA bundle's PEM, as tls.createSecureContext's `ca`. */
  readonly ca?: Buffer;
  /** The same bundle parsed, for the client certificate authenticator. */
  readonly clientCAs?: ClientCABundle;
}

/**
 * Reads the serving key pair and the client CA bundle together: the listener's
 * setSecureContext() replaces the whole context, and one without `ca` would stop
 * verifying client certificates. Throws if any file cannot be used.
 */
export function readServingContext(certFile: string, keyFile: string, clientCAFile?: string): ServingContext {
  const pair = readKeyPair(certFile, keyFile);
  if (clientCAFile === undefined) return pair;
  const clientCAs = readClientCABundle(clientCAFile);
  return { ...pair, ca: clientCAs.pem, clientCAs };
}
