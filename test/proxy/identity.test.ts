// End to end: a real OIDC provider's tokens through the proxy to an upstream that
// authenticates exactly like kube-apiserver's requestheader authenticator.
import { once } from 'node:events';
import { connect } from 'node:tls';
import t from 'tap';
import { startStack, untilReady, type Stack } from '../helpers/stack.js';

const SSR_PATH = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
const SSR_BODY = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });

async function whoami(stack: Stack, headers: Record<string, string | string[]>) {
  const res = await stack.fetch(SSR_PATH, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: SSR_BODY,
  });
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as any };
}

/** The header lines the dev upstream received, from its /debug/headers answer. */
async function upstreamHeaderLines(res: { body: { json(): Promise<unknown> } }): Promise<[string, string][]> {
  return ((await res.body.json()) as { headers: [string, string][] }).headers;
}

t.test('identity through the proxy', async (t) => {
  const stack = await startStack(t);
  await untilReady(stack.proxy);

  t.test('a real id_token maps to the demo user', async (t) => {
    const token = await stack.login();
    const { status, body } = await whoami(stack, { authorization: `Bearer ${token}` });
    t.equal(status, 201);
    t.same(body.status.userInfo, {
      username: 'demo@example.com',
      uid: 'demo',
      groups: ['oidc:developers', 'oidc:infrastructure'],
    });
  });

  t.test('the Bearer scheme is case-insensitive', async (t) => {
    const token = await stack.mint();
    t.equal((await whoami(stack, { authorization: `bearer ${token}` })).status, 201);
    t.equal((await whoami(stack, { authorization: `BEARER ${token}` })).status, 201);
  });

  t.test('no credentials: 401 Status, nothing reaches the upstream', async (t) => {
    const before = stack.upstream.seen.length;
    const { status, headers, body } = await whoami(stack, {});
    t.equal(status, 401);
    t.equal(headers['www-authenticate'], 'Bearer realm="kube-front-proxy"');
    t.match(body, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Unauthorized', code: 401 });
    t.equal(stack.upstream.seen.length, before);
  });

  t.test('a tampered token: 401, nothing reaches the upstream', async (t) => {
    const token = await stack.mint();
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    payload.email = 'admin@example.com';
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    const before = stack.upstream.seen.length;
    t.equal((await whoami(stack, { authorization: `Bearer ${forged}` })).status, 401);
    t.equal((await whoami(stack, { authorization: 'Basic ZGVtbzpkZW1v' })).status, 401, 'other schemes are not credentials');
    t.equal(stack.upstream.seen.length, before);
  });

  t.test('client identity headers never change who the upstream sees', async (t) => {
    const token = await stack.mint();
    const { status, body } = await whoami(stack, {
      authorization: `Bearer ${token}`,
      'X-Remote-User': 'admin',
      'x-remote-group': ['system:masters', 'system:nodes'],
      'X-REMOTE-UID': '0',
      'X-Remote-Extra-Scopes': 'all',
      'x-remote-extra-authentication.kubernetes.io%2Fcredential-id': 'JTI=forged',
    });
    t.equal(status, 201);
    t.same(body.status.userInfo, { username: 'minted@example.com', uid: 'minted', groups: ['oidc:minted'] });
  });

  t.test('Authorization and smuggled headers are not forwarded; Audit-ID and X-Forwarded-* are ours', async (t) => {
    const token = await stack.mint();
    const res = await stack.fetch('/debug/headers', {
      headers: { authorization: `Bearer ${token}`, 'audit-id': 'client-chosen', 'x-forwarded-for': '10.9.9.9', 'x-hop': '1' },
    });
    t.equal(res.statusCode, 200);
    const lines = await upstreamHeaderLines(res);
    const names = lines.map(([n]) => n.toLowerCase());
    t.notOk(names.includes('authorization'), 'no Authorization upstream');
    const value = (name: string) => lines.find(([n]) => n.toLowerCase() === name)?.[1];
    t.equal(value('x-forwarded-for'), '127.0.0.1');
    t.equal(value('x-forwarded-proto'), 'https');
    t.match(value('audit-id'), /^[0-9a-f-]{36}$/);
    t.not(value('audit-id'), 'client-chosen');
    t.equal(stack.upstream.seen.at(-1)!.auditId, value('audit-id'));
  });

  t.test('headers named in Connection are dropped (raw client: undici rewrites Connection)', async (t) => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(stack.proxy.url).port), ca: stack.servingCA, servername: 'localhost' });
    await once(socket, 'secureConnect');
    socket.write(
      `GET /debug/headers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${await stack.mint()}\r\n` +
        'Connection: close, X-Hop\r\nX-Hop: 1\r\nX-Kept: 2\r\n\r\n',
    );
    let text = '';
    for await (const chunk of socket) text += chunk;
    t.match(text, /^HTTP\/1\.1 200 /);
    const lines = (JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { headers: [string, string][] }).headers;
    const names = lines.map(([n]) => n.toLowerCase());
    t.notOk(names.includes('x-hop'), 'X-Hop was named in Connection');
    t.ok(names.includes('x-kept'));
  });

  t.test('Impersonate-* is refused with 403 before the upstream', async (t) => {
    const token = await stack.mint();
    const before = stack.upstream.seen.length;
    const { status, body } = await whoami(stack, { authorization: `Bearer ${token}`, 'Impersonate-User': 'admin' });
    t.equal(status, 403);
    t.match(body, { kind: 'Status', reason: 'Forbidden', code: 403 });
    t.equal((await whoami(stack, { authorization: `Bearer ${token}`, 'impersonate-group': 'system:masters' })).status, 403);
    t.equal(stack.upstream.seen.length, before);
  });

  t.test('groups with commas, percent-encoded extra keys and UTF-8 arrive intact', async (t) => {
    const token = await stack.mint({ email: 'josé@example.com', groups: ['a,b', 'c'], jti: 'token-42' });
    const { status, body } = await whoami(stack, { authorization: `Bearer ${token}` });
    t.equal(status, 201);
    t.same(body.status.userInfo, {
      username: 'josé@example.com',
      uid: 'minted',
      groups: ['oidc:a,b', 'oidc:c'],
      extra: { 'authentication.kubernetes.io/credential-id': ['JTI=token-42'] },
    });
  });

  t.test('CR/LF in a claim refuses the request instead of splitting a header', async (t) => {
    const before = stack.upstream.seen.length;
    for (const claims of [{ email: 'eve@example.com\r\nX-Remote-Group: system:masters' }, { groups: ['ok', 'bad\ngroup'] }, { sub: 'a\u0000b' }]) {
      const { status, body } = await whoami(stack, { authorization: `Bearer ${await stack.mint(claims)}` });
      t.equal(status, 403, JSON.stringify(claims));
      t.match(body, { reason: 'Forbidden' });
    }
    t.equal(stack.upstream.seen.length, before);
  });
});

t.test('allowImpersonationHeaders passes Impersonate-* on for the upstream to authorize', async (t) => {
  const stack = await startStack(t, {
    configure: (c) => ({ ...c, authentication: { ...c.authentication, allowImpersonationHeaders: true } }),
  });
  await untilReady(stack.proxy);
  const res = await stack.fetch('/debug/headers', {
    headers: { authorization: `Bearer ${await stack.mint()}`, 'Impersonate-User': 'admin' },
  });
  t.equal(res.statusCode, 200);
  const lines = await upstreamHeaderLines(res);
  t.ok(lines.some(([n, v]) => n.toLowerCase() === 'impersonate-user' && v === 'admin'));
});
