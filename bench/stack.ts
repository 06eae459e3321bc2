/**
 * What every scenario runs against: the dev PKI and issuer (in this process,
 * idle after start-up), the upstream stand-in and the load generator (child
 * processes), and the pool the servers under test are started from.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDevIssuer, type DevIssuer } from '../dev/issuer.js';
import { ensureDevPki } from '../dev/pki.js';
import { startScript, type IpcChild } from './children.js';
import type { Target } from './loadgen/jobs.js';
import type { BenchOptions } from './options.js';
import { DIRECT } from './results.js';
import { ServerPool } from './servers/pool.js';
import { IDENTITY_HEADERS, type Server, type ServerEnv } from './servers/server.js';
import type { Teardown } from './teardown.js';
import { mintTokens } from './tokens.js';

export interface Stack {
  readonly env: ServerEnv;
  readonly issuer: DevIssuer;
  readonly upstream: IpcChild;
  readonly loadgen: IpcChild;
  readonly servers: ServerPool;
  target(server: Server, extra?: Partial<Target>): Target;
}

/** Starts the stack in `work`; everything it starts is stopped by `teardown`. */
export async function startStack(options: BenchOptions, work: string, teardown: Teardown, stuck: Set<string>): Promise<Stack> {
  const logs = join(work, 'logs');
  mkdirSync(logs, { recursive: true });
  const pki = await ensureDevPki(join(work, 'pki'));
  const pem = (path: string) => readFileSync(path, 'utf8');
  const issuer = await startDevIssuer({ tls: { cert: pem(pki.servingCert), key: pem(pki.servingKey) } });
  teardown.add(() => issuer.close());

  const [upstreamStart, loadgenStart] = await Promise.all([
    startScript<{ port: number }>('upstream', 'upstream', [JSON.stringify({ cert: pki.upstreamCert, key: pki.upstreamKey, clientCA: pki.frontProxyCA, http2: options.upstreamHttp2 === true })], join(logs, 'upstream.log')),
    startScript<undefined>('loadgen', 'loadgen', [], join(logs, 'loadgen.log')),
  ]);
  const upstream = upstreamStart.child;
  const loadgen = loadgenStart.child;
  teardown.add(() => upstream.stop(), () => loadgen.stop());
  const upstreamURL = `https://127.0.0.1:${upstreamStart.ready.port}`;

  const [benchToken] = await mintTokens(issuer, 'RS256', 1);
  const bearer = ['authorization', `Bearer ${benchToken}`];
  const env: ServerEnv = { work, logs, pki, issuer, upstreamURL, log: options.log, stuck, ...(options.proxyWorkers !== undefined && { proxyWorkers: options.proxyWorkers }) };
  const target = (server: Server, extra: Partial<Target> = {}): Target =>
    server.name === DIRECT
      ? { origin: upstreamURL, caFile: pki.upstreamCA, certFile: pki.frontProxyClientCert, keyFile: pki.frontProxyClientKey, headers: IDENTITY_HEADERS, ...extra }
      : { origin: server.url, caFile: pki.servingCA, headers: bearer, ...extra };
  return { env, issuer, upstream, loadgen, servers: new ServerPool(env, teardown), target };
}
