// The client certificate authenticator over real TLS connections on loopback: the
// listener asks for a certificate, the authenticator reads what the handshake gave.
import { createHash, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { connect as http2Connect } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket, type SecureVersion } from 'node:tls';
import t, { type Test } from 'tap';
import { createClientCertificateAuthenticator, CREDENTIAL_ID_KEY } from '../../src/authn/x509-authenticator.js';
import { createListener } from '../../src/listener.js';
import type { ClientRequest } from '../../src/request/client.js';
import { ClientCAFileError, parseClientCABundle } from '../../src/config/ca-bundle.js';
import type { ClientCABundle } from '../../src/tls/client-ca.js';
import { intermediateCA, leaf, renewedCA, rootCA, usage, type Issued } from '../helpers/client-certificates.js';

const ca = await rootCA();
const serving = await leaf(ca, { subject: 'CN=localhost', usages: [usage.serverAuth] });

function bundleOf(...cas: Issued[]): ClientCABundle {
  const pem = cas.map((c) => c.certPem).join('');
  return { pem: Buffer.from(pem), certificates: parseClientCABundle(pem) };
}

interface Server {
  readonly port: number;
  bundle: ClientCABundle;
  clock: number | undefined;
  /** Replaces the listener's CA, as the lead's reload does. */
  reload(bundle: ClientCABundle): void;
}

/** A listener whose every answer is the authenticator's outcome, as JSON. */
async function startServer(t: Test, bundle: ClientCABundle, refuseSystemGroups = false): Promise<Server> {
  const listener = createListener({
    cert: Buffer.from(serving.certPem),
    key: Buffer.from(serving.keyPem),
    ca: bundle.pem,
    http2: true,
    maxConcurrentStreams: 100,
    maxHeaderBytes: 16384,
    handshakeTimeout: 5000,
    headerTimeout: 5000,
    bodyTimeout: 5000,
    keepAliveTimeout: 5000,
  });
  const state = {
    bundle,
    clock: undefined as number | undefined,
    reload(next: ClientCABundle) {
      state.bundle = next;
      listener.setSecureContext({ cert: Buffer.from(serving.certPem), key: Buffer.from(serving.keyPem), ca: next.pem });
    },
  };
  const authenticate = createClientCertificateAuthenticator({
    clientCAs: () => state.bundle,
    refuseSystemGroups,
    now: () => state.clock ?? Date.now(),
  });
  listener.server.on('request', (req: ClientRequest, res) => {
    void authenticate(req, res).then((outcome) => res.end(JSON.stringify(outcome)));
  });
  listener.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    void authenticate(req, undefined as never).then((outcome) => {
      const body = JSON.stringify(outcome);
      socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
  });
  listener.server.listen(0, '127.0.0.1');
  await once(listener.server, 'listening');
  t.teardown(() => {
    listener.destroyAll();
    return listener.stop();
  });
  return Object.assign(state, { port: (listener.server.address() as AddressInfo).port });
}

type Outcome = { kind: string; reason?: string; identity?: { username: string; uid?: string; groups: string[]; extra: Record<string, string[]>; authMethod: string } };

/** One HTTP/1.1 request on a new connection (or the agent's), with this certificate. */
async function get(port: number, cert?: Issued, extra: RequestOptions = {}): Promise<Outcome & { socket: TLSSocket }> {
  const req = httpsRequest({ host: '127.0.0.1', port, path: '/', rejectUnauthorized: false, agent: false, ...(cert && { cert: cert.certPem, key: cert.keyPem }), ...extra });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let body = '';
  for await (const chunk of res) body += String(chunk);
  return { ...(JSON.parse(body) as Outcome), socket: res.socket as TLSSocket };
}

const fingerprintOf = (c: Issued) => `X509SHA256=${createHash('sha256').update(new X509Certificate(c.certPem).raw).digest('hex')}`;

t.test('no certificate is absent: the chain goes on to the bearer token', async (t) => {
  const server = await startServer(t, bundleOf(ca));
  t.match(await get(server.port), { kind: 'absent' });
});

t.test('a verified certificate gives kube\'s identity: CN, every O in order, the uid attribute, the credential id', async (t) => {
  const server = await startServer(t, bundleOf(ca));
  const alice = await leaf(ca, { subject: 'O=team-b, O=team-a, O=with\\, comma, CN=alice, 1.3.6.1.4.1.57683.2=alice-uid' });
  const outcome = await get(server.port, alice);
  t.strictSame(outcome.identity, {
    username: 'alice',
    uid: 'alice-uid',
    groups: ['team-b', 'team-a', 'with, comma'],
    extra: { [CREDENTIAL_ID_KEY]: [fingerprintOf(alice)] },
    authMethod: 'x509',
  });
  const bob = await leaf(ca, { subject: 'CN=bob' });
  t.strictSame((await get(server.port, bob)).identity, { username: 'bob', groups: [], extra: { [CREDENTIAL_ID_KEY]: [fingerprintOf(bob)] }, authMethod: 'x509' });
  // Go's pkix.Name keeps the last CN.
  t.match((await get(server.port, await leaf(ca, { subject: 'CN=first, CN=last' }))).identity, { username: 'last' });
  // No extended key usage at all is any usage, for Go and for OpenSSL.
  t.match((await get(server.port, await leaf(ca, { subject: 'CN=any', usages: [] }))).identity, { username: 'any' });
});

t.test('certificates that do not verify are refused, and the handshake still completes', async (t) => {
  const server = await startServer(t, bundleOf(ca));
  const other = await rootCA('CN=another CA');
  const hour = 3_600_000;
  const cases: [string, Promise<Issued>][] = [
    ['expired', leaf(ca, { subject: 'CN=old', notBefore: new Date(Date.now() - 2 * hour), notAfter: new Date(Date.now() - hour) })],
    ['not yet valid', leaf(ca, { subject: 'CN=early', notBefore: new Date(Date.now() + hour) })],
    ['signed by another CA', leaf(other, { subject: 'CN=admin, O=system:masters' })],
    ['for serverAuth only', leaf(ca, { subject: 'CN=server', usages: [usage.serverAuth] })],
    ['two uid attributes', leaf(ca, { subject: 'CN=twice, 1.3.6.1.4.1.57683.2=a, 1.3.6.1.4.1.57683.2=b' })],
  ];
  for (const [name, cert] of cases) {
    t.match(await get(server.port, await cert), { kind: 'rejected', reason: 'bad_client_certificate' }, name);
  }
  // The other CA's root itself, with our CA's name: not the same key.
  const impostor = await rootCA('CN=test client CA');
  t.match(await get(server.port, await leaf(impostor, { subject: 'CN=admin' })), { kind: 'rejected', reason: 'bad_client_certificate' }, 'a CA with our CA\'s name');
});

t.test('a verified certificate without a CN is absent, as kube\'s no opinion', async (t) => {
  const server = await startServer(t, bundleOf(ca));
  t.match(await get(server.port, await leaf(ca, { subject: 'O=system:masters' })), { kind: 'absent' });
});

t.test('intermediate CAs: sent by the client, or in the bundle; several CAs in one bundle', async (t) => {
  const intermediate = await intermediateCA(ca);
  const carol = await leaf(intermediate, { subject: 'CN=carol' });
  const rootOnly = await startServer(t, bundleOf(ca));
  t.match((await get(rootOnly.port, { certPem: carol.certPem + intermediate.certPem, keyPem: carol.keyPem })).identity, { username: 'carol' }, 'client sends the intermediate');
  t.match(await get(rootOnly.port, carol), { kind: 'rejected' }, 'without the intermediate the chain is incomplete');

  const second = await rootCA('CN=second CA');
  const both = await startServer(t, bundleOf(second, ca, intermediate));
  t.match((await get(both.port, carol)).identity, { username: 'carol' }, 'intermediate in the bundle');
  t.match((await get(both.port, await leaf(second, { subject: 'CN=dave' }))).identity, { username: 'dave' }, 'the first CA of the bundle');
});

t.test('refuseSystemGroups refuses a verified certificate naming a system: group', async (t) => {
  const server = await startServer(t, bundleOf(ca), true);
  t.match(await get(server.port, await leaf(ca, { subject: 'O=system:masters, CN=admin' })), { kind: 'rejected', reason: 'client_certificate_system_group' });
  t.match((await get(server.port, await leaf(ca, { subject: 'O=ops, CN=erin' }))).identity, { username: 'erin', groups: ['ops'] });
  const off = await startServer(t, bundleOf(ca));
  t.match((await get(off.port, await leaf(ca, { subject: 'O=system:masters, CN=admin' }))).identity, { groups: ['system:masters'] }, 'off by default, as kube');
});

t.test('HTTP/2: every stream of a session is the certificate\'s', async (t) => {
  const server = await startServer(t, bundleOf(ca));
  const frank = await leaf(ca, { subject: 'O=g, CN=frank' });
  const session = http2Connect(`https://127.0.0.1:${server.port}`, { rejectUnauthorized: false, cert: frank.certPem, key: frank.keyPem });
  t.teardown(() => session.close());
  for (let i = 0; i < 3; i++) {
    const stream = session.request({ ':path': '/' });
    let body = '';
    for await (const chunk of stream) body += String(chunk);
    t.match((JSON.parse(body) as Outcome).identity, { username: 'frank', groups: ['g'] }, `stream ${i}`);
  }
  const anonymous = http2Connect(`https://127.0.0.1:${server.port}`, { rejectUnauthorized: false });
  t.teardown(() => anonymous.close());
  const stream = anonymous.request({ ':path': '/' });
  let body = '';
  for await (const chunk of stream) body += String(chunk);
  t.match(JSON.parse(body), { kind: 'absent' }, 'a session without a certificate');
});

t.test('upgrades read the same socket', async (t) => {
  const server = await startServer(t, bundleOf(ca));
  const gina = await leaf(ca, { subject: 'CN=gina' });
  const socket = tlsConnect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false, cert: gina.certPem, key: gina.keyPem, ALPNProtocols: ['http/1.1'] });
  await once(socket, 'secureConnect');
  socket.end('GET /api/v1/namespaces/default/pods/p/exec HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  let text = '';
  for await (const chunk of socket) text += String(chunk);
  t.match(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)), { identity: { username: 'gina' } });
});

t.test('a resumed TLS session is still the certificate it was made with', async (t) => {
  const server = await startServer(t, bundleOf(ca));
  const hank = await leaf(ca, { subject: 'CN=hank' });
  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as SecureVersion[]) {
    const agent = new Agent({ maxCachedSessions: 10, maxVersion });
    t.teardown(() => agent.destroy());
    const first = await get(server.port, hank, { agent, headers: { connection: 'close' } });
    t.equal(first.socket.isSessionReused(), false);
    const second = await get(server.port, hank, { agent, headers: { connection: 'close' } });
    t.equal(second.socket.isSessionReused(), true, `${maxVersion} session resumed`);
    t.match(second.identity, { username: 'hank', extra: { [CREDENTIAL_ID_KEY]: [fingerprintOf(hank)] } });
  }
});

t.test('a resumed TLS 1.3 session that never had a certificate is absent, though Node calls it authorized', async (t) => {
  // node's VerifyPeerCertificate takes a resumed TLS 1.3 session without a peer
  // certificate for PSK and reports it authorized: the flag alone is no certificate.
  const server = await startServer(t, bundleOf(ca));
  const agent = new Agent({ maxCachedSessions: 10, maxVersion: 'TLSv1.3' });
  t.teardown(() => agent.destroy());
  await get(server.port, undefined, { agent, headers: { connection: 'close' } });
  const resumed = await get(server.port, undefined, { agent, headers: { connection: 'close' } });
  t.equal(resumed.socket.isSessionReused(), true, 'the session was resumed');
  t.match(resumed, { kind: 'absent' });
});

t.test('an open connection is judged by the current CA bundle and clock, as kube verifies per request', async (t) => {
  const server = await startServer(t, bundleOf(ca));
  const ivy = await leaf(ca, { subject: 'CN=ivy' });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const first = await get(server.port, ivy, { agent });
  t.match(first.identity, { username: 'ivy' });

  server.clock = Date.now() + 2 * 24 * 3_600_000;
  const expired = await get(server.port, ivy, { agent });
  t.equal(expired.socket, first.socket, 'same connection');
  t.match(expired, { kind: 'rejected', reason: 'bad_client_certificate' }, 'the certificate expired since the handshake');
  server.clock = Date.now() - 2 * 3_600_000;
  t.match(await get(server.port, ivy, { agent }), { kind: 'rejected', reason: 'bad_client_certificate' }, 'a clock before the certificate\'s notBefore');
  server.clock = undefined;


  server.reload(bundleOf(await rootCA('CN=the next CA')));
  const afterReload = await get(server.port, ivy, { agent });
  t.equal(afterReload.socket, first.socket, 'same connection');
  t.match(afterReload, { kind: 'rejected', reason: 'bad_client_certificate' }, 'its CA was taken out of the bundle');

  server.reload(bundleOf(await renewedCA(ca)));
  t.match((await get(server.port, ivy, { agent })).identity, { username: 'ivy' }, 'the CA renewed with the same key still anchors the open connection');

  server.reload(bundleOf(ca));
  t.match((await get(server.port, ivy, { agent })).identity, { username: 'ivy' }, 'and put back');
  t.match((await get(server.port, ivy)).identity, { username: 'ivy' }, 'a new connection after the reload');
});

t.test('TLS 1.2 renegotiation is refused when client certificates are asked for', async (t) => {
  const server = await startServer(t, bundleOf(ca));
  const socket = tlsConnect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false, maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] });
  await once(socket, 'secureConnect');
  socket.on('error', () => {});
  const error = await new Promise<Error | null>((resolve) => {
    socket.renegotiate({ rejectUnauthorized: false }, resolve);
    socket.once('close', () => resolve(new Error('closed')));
  });
  socket.destroy();
  t.ok(error, 'renegotiation fails');
});

t.test('the CA bundle: CA certificates only, and intermediates with their root', async (t) => {
  const intermediate = await intermediateCA(ca);
  const user = await leaf(ca, { subject: 'CN=user' });
  t.equal(parseClientCABundle(ca.certPem + intermediate.certPem).length, 2);
  t.throws(() => parseClientCABundle('not a certificate'), ClientCAFileError);
  t.throws(() => parseClientCABundle(user.certPem), { name: 'ClientCAFileError', message: /"CN=user" is not a CA certificate/ });
  t.throws(() => parseClientCABundle(intermediate.certPem), { message: /intermediate CA whose issuer "CN=test client CA" is not in the file; append the root CA/ });
  t.throws(() => parseClientCABundle('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'), { message: /certificate 1 cannot be parsed/ });
});
