/**
 * nginx under test, started from its own prefix folder with the
 * configuration bench/nginx.ts writes.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Child, openFileLimit, stopTree } from '../children.js';
import { nginxHttp2, nginxVersion, prepareNginx } from '../nginx.js';
import { HTTP2_MAX_STREAMS } from '../options.js';
import { NGINX } from '../results.js';
import { until } from '../wait.js';
import { IDENTITY_HEADERS, canConnect, freePort, probe, slug, treeOf, type Server, type ServerEnv } from './server.js';

/** Starts nginx (`name` names its prefix folder and log); resolves once it answers a GET with 200. */
export async function startNginx(env: ServerEnv, name = 'nginx'): Promise<Server> {
  if (!nginxVersion()) throw new Error('nginx is not installed: apt-get install -y nginx-light');
  const { pki } = env;
  const port = await freePort();
  const prefix = join(env.work, slug(name));
  const { command, args } = prepareNginx({
    prefix,
    port,
    upstreamPort: Number(new URL(env.upstreamURL).port),
    servingCert: pki.servingCert,
    servingKey: pki.servingKey,
    upstreamCA: pki.upstreamCA,
    clientCert: pki.frontProxyClientCert,
    clientKey: pki.frontProxyClientKey,
    identityHeaders: IDENTITY_HEADERS,
    maxFiles: openFileLimit().hard,
    ...(nginxHttp2() && { http2MaxStreams: HTTP2_MAX_STREAMS }),
  });
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const child = new Child(NGINX, proc, join(env.logs, `${slug(name)}.log`));
  const stop = () => stopTree(child, 'SIGTERM', 10_000);
  try {
    await until(async () => {
      if (!child.alive) throw new Error(`nginx exited:\n${child.tail()}\n${readFileSync(join(prefix, 'error.log'), 'utf8')}`);
      return canConnect(port);
    }, 15_000, 'nginx to listen');
    const url = `https://127.0.0.1:${port}`;
    const status = await probe(url, pki.servingCA);
    if (status !== 200) throw new Error(`nginx answered ${status} to a GET; see ${join(prefix, 'error.log')}`);
    return { name: NGINX, url, pids: treeOf(child), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
