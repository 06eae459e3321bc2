// A passed-through token travels without the proxy's client certificate: not in a full
// handshake, and not in a resumed TLS session first made with the certificate (a resumed
// session keeps the identity of its first handshake). The server here asks for a client
// certificate as kube-apiserver does and reports what it saw on each connection.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import t from 'tap';
import { request } from 'undici';
import { silentLogger } from '../../src/observe/logger.js';
import { Upstream } from '../../src/proxy/upstream.js';
import { devPki } from '../helpers/stack.js';

const pki = await devPki();
const server: Server = createServer(
  {
    cert: await readFile(pki.upstreamCert),
    key: await readFile(pki.upstreamKey),
    ca: await readFile(pki.frontProxyCA),
    requestCert: true,
    rejectUnauthorized: false,
  },
  (req, res) => {
    const socket = req.socket as TLSSocket;
    res.end(JSON.stringify({ certificate: socket.getPeerCertificate().subject?.CN ?? null, resumed: socket.isSessionReused() }));
  },
);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
t.teardown(() => new Promise((resolve) => server.close(resolve)));
server.on('secureConnection', (s: TLSSocket) => s.on('error', () => {}));

const upstream = new Upstream(
  {
    identity: 'requestheader',
    passAccessToken: false,
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caFile: pki.upstreamCA,
    clientCertFile: pki.frontProxyClientCert,
    clientKeyFile: pki.frontProxyClientKey,
    identityHeaders: { user: ['X-Remote-User'], group: ['X-Remote-Group'], extraPrefix: ['X-Remote-Extra-'], uid: ['X-Remote-Uid'] },
    responseTimeout: 5000,
  },
  silentLogger,
);
t.teardown(() => upstream.close());

/** What the server saw, on a new connection each time (reset closes it after the answer). */
const seen = async (pool: Upstream['pool']) => {
  const res = await request(`${upstream.url.origin}/`, { dispatcher: pool, reset: true });
  return (await res.body.json()) as { certificate: string | null; resumed: boolean };
};

t.test('requests: the proxy pool presents the certificate, the passthrough pool never does', async (t) => {
  for (let i = 0; i < 4; i++) t.equal((await seen(upstream.pool)).certificate, 'front-proxy-client', `identity request ${i}`);
  for (let i = 0; i < 6; i++) {
    const answer = await seen(upstream.dispatcherFor('short', false));
    t.equal(answer.certificate, null, `passed-through request ${i}${answer.resumed ? ' (resumed session)' : ''}`);
  }
});

t.test('tunnels: a passthrough tunnel never resumes a session made with the certificate', async (t) => {
  const handshake = async (withCertificate: boolean) => {
    const socket = upstream.connect(withCertificate) as TLSSocket;
    await once(socket, 'secureConnect');
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await once(socket, 'end');
    socket.destroy();
    return JSON.parse(text.slice(text.indexOf('{'))) as { certificate: string | null };
  };
  for (let i = 0; i < 3; i++) t.equal((await handshake(true)).certificate, 'front-proxy-client');
  for (let i = 0; i < 3; i++) t.equal((await handshake(false)).certificate, null);
});
