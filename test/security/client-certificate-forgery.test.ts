// Client certificate forgery: with listen.tls.clientCAFile set, only a certificate
// that chains to a CA in that file is an identity. A certificate from any other CA
// (another CA's admin with O=system:masters, one signed by the proxy's own serving
// CA or by the front-proxy CA, a self-made CA with the client CA's very name) gets a
// 401 Status and reaches nobody; with a valid bearer token it changes nothing.
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import { SPDY_LINES } from '../helpers/raw-upgrade.js';
import { requestHead } from '../helpers/raw-tls.js';
import { intermediateCA, leaf, rootCA, type Issued } from '../helpers/client-certificates.js';
import { startStack, untilReady } from '../helpers/stack.js';

const REVIEW = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
const reviewBody = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });

const clientCA = await rootCA('CN=kfp break-glass CA, O=example');
const caFile = join(t.testdir(), 'client-ca.crt');
await writeFile(caFile, clientCA.certPem);
const stack = await startStack(t, {
  configure: (c) => ({ ...c, listen: { ...c.listen, tls: { ...c.listen.tls, clientCAFile: caFile } } }),
});
await untilReady(stack.proxy);
const pem = (file: string) => readFile(file, 'utf8');

/** A SelfSubjectReview through the proxy with this certificate (and token); what came back, and what the upstream saw. */
async function review(cert: Issued | undefined, token?: string) {
  const agent = new Agent({ connect: { ca: stack.servingCA, ...(cert && { cert: cert.certPem, key: cert.keyPem }) } });
  t.teardown(() => agent.close());
  const seenBefore = stack.upstream.seen.length;
  const res = await request(`${stack.proxy.url}${REVIEW}`, {
    dispatcher: agent,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: reviewBody,
  });
  const body = (await res.body.json()) as { kind: string; reason?: string; status?: { userInfo: { username: string; groups: string[] } } };
  return { status: res.statusCode, body, upstreamSaw: stack.upstream.seen.slice(seenBefore) };
}

t.test('control: a certificate of the client CA is its CN and O', async (t) => {
  const { status, body } = await review(await leaf(clientCA, { subject: 'O=system:masters, CN=break-glass-admin' }));
  t.equal(status, 201);
  t.match(body.status?.userInfo, { username: 'break-glass-admin', groups: ['system:masters'] });
});

const forgeries: [string, () => Promise<Issued>][] = [
  ['another CA\'s CN=admin O=system:masters', async () => leaf(await rootCA('CN=attacker CA'), { subject: 'O=system:masters, CN=admin' })],
  [
    'signed by the proxy\'s own serving CA',
    async () => leaf({ certPem: await pem(stack.pki.servingCA), keyPem: await pem(stack.pki.servingCAKey) }, { subject: 'O=system:masters, CN=admin' }),
  ],
  [
    'signed by the front-proxy CA (the upstream trusts it for identity headers)',
    async () => leaf({ certPem: await pem(stack.pki.frontProxyCA), keyPem: await pem(stack.pki.frontProxyCAKey) }, { subject: 'O=system:masters, CN=admin' }),
  ],
  ['the front-proxy client certificate itself', async () => ({ certPem: await pem(stack.pki.frontProxyClientCert), keyPem: await pem(stack.pki.frontProxyClientKey) })],
  ['signed by a self-made CA with the client CA\'s subject name', async () => leaf(await rootCA('CN=kfp break-glass CA, O=example'), { subject: 'O=system:masters, CN=admin' })],
  ['a self-signed certificate with the client CA\'s subject name', () => rootCA('CN=kfp break-glass CA, O=example')],
  [
    'a leaf of the client CA posing as an intermediate for its own CA',
    async () => {
      // Not a CA (CA:FALSE): what it signs must not verify.
      const user = await leaf(clientCA, { subject: 'CN=mallory' });
      const fake = await leaf(user, { subject: 'O=system:masters, CN=admin' });
      return { certPem: fake.certPem + user.certPem, keyPem: fake.keyPem };
    },
  ],
  [
    'an intermediate of another CA sent along',
    async () => {
      const other = await intermediateCA(await rootCA('CN=attacker CA'));
      const fake = await leaf(other, { subject: 'O=system:masters, CN=admin' });
      return { certPem: fake.certPem + other.certPem, keyPem: fake.keyPem };
    },
  ],
];

for (const [name, make] of forgeries) {
  t.test(name, async (t) => {
    const forged = await make();
    const alone = await review(forged);
    t.equal(alone.status, 401, 'refused at the request, after a completed handshake');
    t.match(alone.body, { kind: 'Status', reason: 'Unauthorized' });
    t.same(alone.upstreamSaw, [], 'nothing reached the upstream');

    const withToken = await review(forged, await stack.mint({ email: 'eve@example.com', groups: [] }));
    t.equal(withToken.status, 201, 'a valid bearer token on the same request still authenticates (kube\'s union)');
    t.match(withToken.body.status?.userInfo, { username: 'eve@example.com' });
    t.notMatch(withToken.body.status?.userInfo.groups, ['system:masters'], 'and the certificate adds nothing');
  });
}

/** kubectl exec's SPDY upgrade with this certificate: the status line, and who the upstream saw open it. */
async function exec(cert: Issued) {
  const url = new URL(stack.proxy.url);
  const socket = connect({ host: url.hostname, port: Number(url.port), ca: stack.servingCA, servername: 'localhost', cert: cert.certPem, key: cert.keyPem, ALPNProtocols: ['http/1.1'] });
  t.teardown(() => socket.destroy());
  await once(socket, 'secureConnect');
  const seenBefore = stack.upstream.seen.length;
  socket.write(requestHead('POST', '/api/v1/namespaces/default/pods/demo-0/exec?command=sh&stdout=1', url.host, [...SPDY_LINES, 'Content-Length: 0']));
  let head = '';
  for await (const chunk of socket) {
    head += String(chunk);
    if (head.includes('\r\n\r\n')) break;
  }
  socket.destroy();
  return { status: Number(head.split(' ')[1]), upstreamSaw: stack.upstream.seen.slice(seenBefore).map((r) => r.user?.username) };
}

t.test('exec upgrades: the client CA\'s certificate opens a tunnel as its user, a forged one gets 401', async (t) => {
  const good = await exec(await leaf(clientCA, { subject: 'CN=exec-user' }));
  t.equal(good.status, 101);
  t.same(good.upstreamSaw, ['exec-user']);
  const forged = await exec(await leaf(await rootCA('CN=attacker CA'), { subject: 'O=system:masters, CN=admin' }));
  t.equal(forged.status, 401);
  t.same(forged.upstreamSaw, [], 'nothing reached the upstream');
});
