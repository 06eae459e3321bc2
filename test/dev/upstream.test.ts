import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { ensureDevPki, issueCertificate } from '../../dev/pki.js';
import { patternBytes, startDevUpstream } from '../../dev/upstream.js';

const dir = await mkdtemp(join(tmpdir(), 'kfp-upstream-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const pki = await ensureDevPki(dir);
const pem = (f: string) => readFile(f, 'utf8');
const ca = await pem(pki.upstreamCA);
const frontProxy = { cert: await pem(pki.frontProxyClientCert), key: await pem(pki.frontProxyClientKey) };
const frontProxyCA = { caCertPem: await pem(pki.frontProxyCA), caKeyPem: await pem(pki.frontProxyCAKey) };

const upstream = await startDevUpstream({
  tls: { cert: await pem(pki.upstreamCert), key: await pem(pki.upstreamKey) },
  clientCA: frontProxyCA.caCertPem,
});
t.teardown(() => upstream.close());

/** A header value as a client that encodes UTF-8 (Go, or the proxy) puts it on the wire; Node reads header bytes as latin1. */
const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

const agent = (client?: { cert: string; key: string }) => {
  const a = new Agent({ connect: { ca, ...client } });
  t.teardown(() => a.close());
  return a;
};
const asProxy = agent(frontProxy);

async function whoami(dispatcher: Agent, headers: [string, string][]) {
  const res = await request(`${upstream.url}/apis/authentication.k8s.io/v1/selfsubjectreviews`, {
    dispatcher,
    method: 'POST',
    headers: headers.flat(),
    body: '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}',
  });
  return { status: res.statusCode, body: (await res.body.json()) as any };
}

t.test('the front-proxy client asserts an identity exactly as kube reads it', async (t) => {
  const { status, body } = await whoami(asProxy, [
    ['X-Remote-User', utf8('zoë@example.com')],
    ['X-Remote-Uid', 'u-1'],
    ['X-Remote-Group', 'a,b'],
    ['x-remote-group', 'dev ops'],
    ['X-Remote-Group', ''],
    ['X-Remote-Extra-Example.com%2Fteam', 'x'],
    ['X-Remote-Extra-example.com%2fteam', 'y'],
    ['X-Remote-Extra-Bad%zz', 'kept'],
    ['X-Remote-Extra-Scopes', 'a,b'],
  ]);
  t.equal(status, 201);
  t.equal(body.kind, 'SelfSubjectReview');
  t.same(body.status.userInfo, {
    username: 'zoë@example.com',
    uid: 'u-1',
    groups: ['a,b', 'dev ops'],
    extra: { 'example.com/team': ['x', 'y'], 'bad%zz': ['kept'], scopes: ['a,b'] },
  });
  t.same(upstream.seen.at(-1)?.user?.username, 'zoë@example.com');
});

t.test('the user name is the first header line; an empty one authenticates nobody', async (t) => {
  const first = await whoami(asProxy, [['X-Remote-User', 'alice'], ['X-Remote-User', 'mallory']]);
  t.equal(first.body.status.userInfo.username, 'alice');
  t.equal(first.body.status.userInfo.groups, undefined, 'empty fields are omitted, as Go does');
  const empty = await whoami(asProxy, [['X-Remote-User', ''], ['X-Remote-User', 'mallory']]);
  t.equal(empty.status, 401);
});

t.test('identity headers are ignored without a trusted front-proxy certificate', async (t) => {
  const wrongCN = await issueCertificate({ ...frontProxyCA, commonName: 'intruder', clientAuth: true });
  const serverOnly = await issueCertificate({ ...frontProxyCA, commonName: 'front-proxy-client', serverAuth: true });
  const expired = await issueCertificate({
    ...frontProxyCA,
    commonName: 'front-proxy-client',
    clientAuth: true,
    notBefore: new Date(Date.now() - 7_200_000),
    notAfter: new Date(Date.now() - 3_600_000),
  });
  const otherCA = await issueCertificate({
    caCertPem: await pem(pki.servingCA),
    caKeyPem: await pem(pki.servingCAKey),
    commonName: 'front-proxy-client',
    clientAuth: true,
  });
  const cases = { 'no certificate': undefined, 'wrong CN': wrongCN, 'serverAuth only': serverOnly, expired, 'another CA': otherCA };
  for (const [name, cert] of Object.entries(cases)) {
    const client = agent(cert && { cert: cert.certPem, key: cert.keyPem });
    const { status, body } = await whoami(client, [['X-Remote-User', 'admin'], ['X-Remote-Group', 'system:masters']]);
    t.equal(status, 401, name);
    t.equal(body.reason, 'Unauthorized', name);
    t.equal(upstream.seen.at(-1)?.user, null, name);
  }
});

t.test('allowedNames [] accepts any CN the CA signed', async (t) => {
  const open = await startDevUpstream({
    tls: { cert: await pem(pki.upstreamCert), key: await pem(pki.upstreamKey) },
    clientCA: frontProxyCA.caCertPem,
    allowedNames: [],
    headers: { user: ['X-User'] },
  });
  t.teardown(() => open.close());
  const other = await issueCertificate({ ...frontProxyCA, commonName: 'someone-else', clientAuth: true });
  const res = await request(`${open.url}/debug/headers`, {
    dispatcher: agent({ cert: other.certPem, key: other.keyPem }),
    headers: { 'X-User': 'bob', 'X-Remote-User': 'ignored' },
  });
  t.equal(res.statusCode, 200);
  await res.body.dump();
  t.equal(open.seen.at(-1)?.user?.username, 'bob');
});

t.test('API routes, Audit-ID and errors', async (t) => {
  const get = async (path: string, headers: Record<string, string> = { 'X-Remote-User': 'u' }) => {
    const res = await request(`${upstream.url}${path}`, { dispatcher: asProxy, headers });
    return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as any };
  };
  t.equal((await get('/api')).body.kind, 'APIVersions');
  t.equal((await get('/apis')).body.kind, 'APIGroupList');
  t.equal((await get('/version', {})).body.major, '1', '/version needs no identity');
  const list = await get('/api/v1/namespaces/team-a/pods');
  t.equal(list.body.kind, 'PodList');
  t.equal(list.body.items[0].metadata.namespace, 'team-a');
  const size = JSON.stringify(list.body.items[0]).length;
  t.ok(size > 900 && size < 1400, `a pod is about 1 KiB (${size})`);
  t.equal((await get('/api/v1/namespaces/team-a/pods/demo-1')).body.status.phase, 'Running');

  const audited = await get('/api', { 'X-Remote-User': 'u', 'Audit-ID': 'abc-123' });
  t.equal(audited.headers['audit-id'], 'abc-123');
  t.equal(upstream.seen.at(-1)?.auditId, 'abc-123');
  t.match((await get('/api')).headers['audit-id'], /^[0-9a-f-]{36}$/);

  const missing = await get('/nope');
  t.equal(missing.status, 404);
  t.equal(missing.body.reason, 'NotFound');
  const anonymous = await get('/api', {});
  t.equal(anonymous.status, 401);
  t.equal(anonymous.body.kind, 'Status');

  const headers = await get('/debug/headers', { 'X-Remote-User': 'u', 'X-Remote-Group': utf8('é') });
  t.same(
    headers.body.headers.filter(([n]: [string]) => n.startsWith('X-Remote')),
    [['X-Remote-User', 'u'], ['X-Remote-Group', 'é']],
    'raw lines, values read as UTF-8',
  );
});

t.test('echo streams 8 MiB back; bytes serves the pattern', async (t) => {
  const body = patternBytes(7, 8 * 1024 * 1024);
  const echo = await request(`${upstream.url}/debug/echo`, {
    dispatcher: asProxy,
    method: 'POST',
    headers: { 'X-Remote-User': 'u' },
    body,
  });
  t.equal(echo.statusCode, 200);
  t.ok(Buffer.from(await echo.body.arrayBuffer()).equals(body), 'echoed intact');

  const n = 1_000_003;
  const bytes = await request(`${upstream.url}/debug/bytes?n=${n}`, { dispatcher: asProxy, headers: { 'X-Remote-User': 'u' } });
  t.equal(bytes.headers['content-length'], String(n));
  t.ok(Buffer.from(await bytes.body.arrayBuffer()).equals(patternBytes(0, n)));
  const bad = await request(`${upstream.url}/debug/bytes?n=-1`, { dispatcher: asProxy, headers: { 'X-Remote-User': 'u' } });
  t.equal(bad.statusCode, 400);
  await bad.body.dump();
});

t.test('a watch gets its headers at once and then every emitted event', async (t) => {
  const res = await request(`${upstream.url}/api/v1/namespaces/default/pods?watch=1`, {
    dispatcher: asProxy,
    headers: { 'X-Remote-User': 'u' },
  });
  t.equal(res.statusCode, 200, 'headers arrived before any event');
  t.equal(upstream.emitPodEvent('other', 'ADDED'), 0, 'other namespaces are not watched');
  t.equal(upstream.emitPodEvent('default', 'ADDED'), 1);
  upstream.emitPodEvent('default', 'DELETED', { kind: 'Pod', metadata: { name: 'x' } });
  let text = '';
  for await (const chunk of res.body) {
    text += chunk;
    if (text.split('\n').length > 2) break;
  }
  const [added, deleted] = text.trim().split('\n').map((l) => JSON.parse(l));
  t.equal(added.type, 'ADDED');
  t.equal(added.object.metadata.name, 'demo-0');
  t.same(deleted, { type: 'DELETED', object: { kind: 'Pod', metadata: { name: 'x' } } });
});

/** Opens a TLS connection and sends an upgrade request; resolves with the response head and the socket. */
async function rawUpgrade(client: { cert: string; key: string } | undefined, lines: string[]) {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port: upstream.port, ca, servername: 'localhost', ...client });
  await once(socket, 'secureConnect');
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  let buf = Buffer.alloc(0);
  while (!buf.includes('\r\n\r\n')) {
    const [chunk] = await once(socket, 'data');
    buf = Buffer.concat([buf, chunk as Buffer]);
  }
  const end = buf.indexOf('\r\n\r\n');
  return { head: buf.subarray(0, end).toString(), rest: buf.subarray(end + 4), socket };
}

t.test('SPDY/3.1 upgrade: 101 with the protocol version, then an echo', async (t) => {
  const { head, rest, socket } = await rawUpgrade(frontProxy, [
    'POST /api/v1/namespaces/default/pods/demo-0/exec?command=sh HTTP/1.1',
    'Host: localhost',
    'Connection: Upgrade',
    'Upgrade: SPDY/3.1',
    'X-Stream-Protocol-Version: v4.channel.k8s.io',
    'X-Stream-Protocol-Version: v3.channel.k8s.io',
    'X-Remote-User: tunneler',
  ]);
  t.teardown(() => socket.destroy());
  t.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  t.match(head, /\r\nUpgrade: SPDY\/3\.1\r\n/);
  t.match(head, /\r\nX-Stream-Protocol-Version: v4\.channel\.k8s\.io\r\n/);
  t.equal(rest.length, 0);
  const payload = Buffer.from([0x80, 0x03, 0x00, 0x01, 0xff, 0x00, 0x0d, 0x0a]);
  socket.write(payload);
  const [echoed] = await once(socket, 'data');
  t.same(echoed, payload);
  const last = upstream.seen.at(-1)!;
  t.equal(last.upgrade, 'SPDY/3.1');
  t.equal(last.user?.username, 'tunneler');
});

t.test('upgrades without a trusted certificate get a 401 Status on the socket', async (t) => {
  const { head, rest, socket } = await rawUpgrade(undefined, [
    'GET /api/v1/namespaces/default/pods/demo-0/exec HTTP/1.1',
    'Host: localhost',
    'Connection: Upgrade',
    'Upgrade: SPDY/3.1',
    'X-Remote-User: admin',
  ]);
  t.teardown(() => socket.destroy());
  t.match(head, /^HTTP\/1\.1 401 Unauthorized\r\n/);
  let body = rest;
  while (body.length < Number(/Content-Length: (\d+)/.exec(head)![1])) {
    body = Buffer.concat([body, (await once(socket, 'data'))[0] as Buffer]);
  }
  t.equal(JSON.parse(body.toString()).code, 401);
});

t.test('WebSocket upgrade: subprotocol negotiated, messages echoed', async (t) => {
  const ws = new WebSocket(`wss://127.0.0.1:${upstream.port}/api/v1/namespaces/default/pods/demo-0/exec?command=sh`, ['v5.channel.k8s.io', 'v4.channel.k8s.io'], {
    ca,
    ...frontProxy,
    headers: { 'X-Remote-User': 'ws-user' },
  });
  t.teardown(() => ws.terminate());
  await once(ws, 'open');
  t.equal(ws.protocol, 'v5.channel.k8s.io');
  ws.send(Buffer.from([0, 0x68, 0x69]));
  const [data, isBinary] = await once(ws, 'message');
  t.ok(isBinary);
  t.same(data, Buffer.from([0, 0x68, 0x69]));
  t.equal(upstream.seen.at(-1)?.user?.username, 'ws-user');

  const denied = new WebSocket(`wss://127.0.0.1:${upstream.port}/api/v1/namespaces/default/pods/demo-0/exec`, {
    ca,
    headers: { 'X-Remote-User': 'admin' },
  });
  const [, res] = await once(denied, 'unexpected-response');
  t.equal(res.statusCode, 401);
  denied.on('error', () => undefined); // terminate() reports the aborted handshake as an error
  denied.terminate();
});

t.test('a resumed TLS session still carries the client certificate', async (t) => {
  // undici caches TLS sessions, so the proxy's later connections are resumed ones.
  const exchange = (user: string, session?: Buffer) =>
    new Promise<{ response: string; reused: boolean; session: Buffer | undefined }>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: upstream.port, ca, servername: 'localhost', ...frontProxy, ...(session && { session }) });
      let response = '';
      socket.on('error', reject);
      socket.on('data', (d) => (response += d));
      socket.on('secureConnect', () => socket.write(`GET /debug/headers HTTP/1.1\r\nHost: x\r\nX-Remote-User: ${user}\r\nConnection: close\r\n\r\n`));
      socket.on('end', () => resolve({ response, reused: socket.isSessionReused(), session: socket.getSession() }));
    });
  const first = await exchange('fresh');
  t.match(first.response, /^HTTP\/1\.1 200 /);
  const second = await exchange('resumed', first.session);
  t.ok(second.reused, 'the session was resumed');
  t.match(second.response, /^HTTP\/1\.1 200 /);
  t.equal(upstream.seen.at(-1)?.user?.username, 'resumed');
});

t.test('close() ends watches and tunnels and frees the port', async (t) => {
  const tls = { cert: await pem(pki.upstreamCert), key: await pem(pki.upstreamKey) };
  const u = await startDevUpstream({ tls, clientCA: frontProxyCA.caCertPem });
  const res = await request(`${u.url}/api/v1/pods?watch=true`, { dispatcher: asProxy, headers: { 'X-Remote-User': 'u' } });
  const ended = res.body.text();
  const { socket } = await rawUpgradeTo(u.port);
  const closed = once(socket, 'close');
  await u.close();
  await ended;
  await closed;
  const again = await startDevUpstream({ tls, clientCA: frontProxyCA.caCertPem, port: u.port });
  await again.close();
  t.pass('restarted on the same port');
});

async function rawUpgradeTo(port: number) {
  const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...frontProxy });
  await once(socket, 'secureConnect');
  socket.write('GET /api/v1/namespaces/d/pods/p/attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Remote-User: u\r\n\r\n');
  await once(socket, 'data');
  socket.on('error', () => undefined);
  return { socket };
}
