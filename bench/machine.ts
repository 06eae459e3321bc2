/** The machine and the versions a run measured, for the head of RESULTS.md. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXT, openFileLimit } from './children.js';
import { nginxVersion } from './nginx.js';
import { oauth2ProxyVersion } from './servers/oauth2-proxy.js';
import type { BenchResults } from './results.js';

/** Cores, memory, kernel and the open-file limit children get. */
export function machine(): BenchResults['machine'] {
  const model = cpus()[0]?.model ?? 'unknown';
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return { nproc: cpus().length, cpuModel: model, memoryGiB: Math.round(totalmem() / 2 ** 30), kernel, openFiles: openFileLimit().hard };
}

/** node, undici, nginx, oauth2-proxy, and the git revision of the proxy under test. */
export function versions(): BenchResults['versions'] {
  const root = fileURLToPath(new URL(EXT === '.ts' ? '../' : '../../../../', import.meta.url));
  let rev = 'unknown';
  try {
    rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'package.json'], { cwd: root, encoding: 'utf8' }).trim();
    if (dirty) rev += ' (with uncommitted changes in src/ or package.json)';
  } catch {
    // not a git checkout
  }
  let undici = 'unknown';
  try {
    undici = (JSON.parse(readFileSync(join(root, 'node_modules/undici/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // not installed where expected
  }
  return {
    node: process.version,
    nginx: nginxVersion() ?? 'not installed',
    kubeFrontProxy: rev,
    undici,
    upstream: 'bench/upstream.ts (lean Node HTTPS server, mutual TLS, precomputed bodies)',
    oauth2Proxy: oauth2ProxyVersion() ?? 'not built',
  };
}
