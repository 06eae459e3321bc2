/**
 * The plain Node forwarder the issue compares with (a child process): the npm
 * `http-proxy` package behind an HTTPS server, forwarding to the upstream over
 * keep-alive mutual TLS with the same client certificate, setting the same
 * static identity headers, verifying nothing. Keep-alive is on (http-proxy's
 * default agent would open a connection per request, a straw man).
 *
 * argv[2]: JSON { servingCert, servingKey, upstreamURL, upstreamCA, clientCert, clientKey, identityHeaders }.
 */
import { readFileSync } from 'node:fs';
import { Agent, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import httpProxy from 'http-proxy';
import { emitEvent } from './ipc.js';

interface Options {
  readonly servingCert: string;
  readonly servingKey: string;
  readonly upstreamURL: string;
  readonly upstreamCA: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly identityHeaders: readonly string[];
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;

const agent = new Agent({
  keepAlive: true,
  ca: readFileSync(options.upstreamCA),
  cert: readFileSync(options.clientCert),
  key: readFileSync(options.clientKey),
});
const proxy = httpProxy.createProxyServer({ target: options.upstreamURL, agent, secure: true, xfwd: true });
proxy.on('proxyReq', (proxyReq) => {
  proxyReq.removeHeader('authorization');
  for (let i = 0; i < options.identityHeaders.length; i += 2) proxyReq.setHeader(options.identityHeaders[i], options.identityHeaders[i + 1]);
});
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502).end();
  else res.destroy();
});

const server = createServer({ cert: readFileSync(options.servingCert), key: readFileSync(options.servingKey) }, (req, res) => proxy.web(req, res));
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => emitEvent('ready', { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` }));
process.on('disconnect', () => process.exit(0));
