/**
 * Certificate files that may change under us (cert-manager, kubelet secret
 * volumes swap a symlink). We poll with stat, which follows symlinks and
 * survives atomic renames where fs.watch does not.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext } from 'node:tls';

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
