/** The plain http-proxy forwarder scenario 1 compares with (bench/http-proxy-forwarder.ts), as a child process. */
import { join } from 'node:path';
import { startScript } from '../children.js';
import { HTTP_PROXY } from '../results.js';
import { IDENTITY_HEADERS, treeOf, type Server, type ServerEnv } from './server.js';

/** Starts the forwarder; resolves once it is listening. */
export async function startHttpProxy(env: ServerEnv): Promise<Server> {
  const { pki } = env;
  const { child, ready } = await startScript<{ url: string }>(
    HTTP_PROXY,
    'http-proxy-forwarder',
    [
      JSON.stringify({
        servingCert: pki.servingCert,
        servingKey: pki.servingKey,
        upstreamURL: env.upstreamURL,
        upstreamCA: pki.upstreamCA,
        clientCert: pki.frontProxyClientCert,
        clientKey: pki.frontProxyClientKey,
        identityHeaders: IDENTITY_HEADERS,
      }),
    ],
    join(env.logs, 'http-proxy.log'),
  );
  return { name: HTTP_PROXY, url: ready.url, pids: treeOf(child), stop: () => child.stop() };
}
