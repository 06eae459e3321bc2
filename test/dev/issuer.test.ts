import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, customFetch, decodeProtectedHeader, jwtVerify, SignJWT, importJWK } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { ensureDevPki } from '../../dev/pki.js';
import { startDevIssuer, type DevIssuer } from '../../dev/issuer.js';
import { loginWithPassword } from '../../dev/login-client.js';

const dir = await mkdtemp(join(tmpdir(), 'kfp-issuer-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const pki = await ensureDevPki(dir);
const tls = { cert: await readFile(pki.servingCert, 'utf8'), key: await readFile(pki.servingKey, 'utf8') };
const ca = await readFile(pki.servingCA, 'utf8');

const agent = new Agent({ connect: { ca } });
t.teardown(() => agent.close());
const caFetch = ((url: string, init: RequestInit) =>
  undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;

/** Verifies a token against the issuer's published JWKS, as the proxy will. */
const verify = (issuer: DevIssuer, token: string) =>
  jwtVerify(token, createRemoteJWKSet(new URL(`${issuer.url}/jwks`), { [customFetch]: caFetch }), {
    issuer: issuer.url,
    audience: 'kubernetes',
  });

const login = (issuer: DevIssuer, more: Partial<Parameters<typeof loginWithPassword>[0]> = {}) =>
  loginWithPassword({
    issuerURL: issuer.url,
    ca,
    clientId: 'kubernetes',
    redirectURI: 'http://localhost:8000',
    username: 'demo',
    password: 'demo',
    ...more,
  });

const odd = {
  login: 'odd',
  password: 'pw',
  claims: {
    sub: 'odd-1',
    email: 'zoë@exämple.com',
    email_verified: 'true',
    preferred_username: 'evil\r\nX-Remote-User: admin',
    groups: ['a,b', 'system:masters'],
    hd: 'example.com',
  },
};

const issuer = await startDevIssuer({ tls, users: [odd] });
t.teardown(() => issuer.close());

t.test('the demo user logs in and gets a verifiable id_token with the requested claims', async (t) => {
  t.match(issuer.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const tokens = await login(issuer);
  const { payload, protectedHeader } = await verify(issuer, tokens.idToken);
  t.equal(payload.iss, issuer.url);
  t.equal(payload.aud, 'kubernetes');
  t.equal(payload.sub, 'demo');
  t.equal(payload.email, 'demo@example.com');
  t.equal(payload.email_verified, true);
  t.equal(payload.name, 'Demo User');
  t.same(payload.groups, ['developers', 'infrastructure']);
  t.equal(protectedHeader.alg, 'RS256');
  t.equal(tokens.expiresAt, payload.exp);
  t.ok(tokens.expiresAt > Date.now() / 1000 + 3500, 'an hour by default');
  t.type(tokens.refreshToken, 'string', 'offline_access gives a refresh token');
  t.type(tokens.accessToken, 'string');
});

t.test('odd claims flow through a real provider unchanged', async (t) => {
  const tokens = await login(issuer, { username: 'odd', password: 'pw', redirectURI: 'http://127.0.0.1:41234' });
  const { payload } = await verify(issuer, tokens.idToken);
  t.equal(payload.email, 'zoë@exämple.com');
  t.equal(payload.email_verified, 'true');
  t.equal(payload.preferred_username, 'evil\r\nX-Remote-User: admin');
  t.same(payload.groups, ['a,b', 'system:masters']);
  t.equal(payload.hd, 'example.com', 'claims outside the standard scopes come with openid');
});

t.test('kubelogin-style redirect URIs are registered', async (t) => {
  for (const redirectURI of ['http://localhost:18000', 'urn:ietf:wg:oauth:2.0:oob']) {
    const { idToken } = await login(issuer, { redirectURI });
    t.ok(idToken, redirectURI);
  }
});

t.test('only the scopes asked for are released', async (t) => {
  const tokens = await login(issuer, { scopes: ['openid', 'email'] });
  const { payload } = await verify(issuer, tokens.idToken);
  t.equal(payload.email, 'demo@example.com');
  t.equal(payload.groups, undefined);
  t.equal(payload.name, undefined);
});

t.test('the refresh token gets a fresh id_token', async (t) => {
  const { refreshToken } = await login(issuer, { scopes: ['openid', 'groups'] });
  t.type(refreshToken, 'string', 'issued without offline_access or prompt=consent');
  const res = await caFetch(`${issuer.url}/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken!, client_id: 'kubernetes' }),
  });
  t.equal(res.status, 200);
  const body = (await res.json()) as { id_token: string };
  const { payload } = await verify(issuer, body.id_token);
  t.same(payload.groups, ['developers', 'infrastructure']);
});

t.test('a wrong password is refused', async (t) => {
  await t.rejects(login(issuer, { password: 'nope' }), /login failed.*after submitting the login form/);
  await t.rejects(login(issuer, { username: 'nobody' }), /login failed/);
});

t.test('a confidential client with a secret and an https redirect URI', async (t) => {
  const other = await startDevIssuer({
    tls,
    idTokenTTL: 120,
    clients: [
      {
        client_id: 'web',
        client_secret: 'web-secret-that-is-long-enough',
        redirect_uris: ['https://proxy.example.com/oauth2/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        id_token_signed_response_alg: 'ES256',
      },
    ],
  });
  t.teardown(() => other.close());
  const tokens = await login(other, {
    clientId: 'web',
    clientSecret: 'web-secret-that-is-long-enough',
    redirectURI: 'https://proxy.example.com/oauth2/callback',
  });
  const { payload, protectedHeader } = await jwtVerify(
    tokens.idToken,
    createRemoteJWKSet(new URL(`${other.url}/jwks`), { [customFetch]: caFetch }),
    { issuer: other.url, audience: 'web' },
  );
  t.equal(protectedHeader.alg, 'ES256');
  t.ok((payload.exp ?? 0) - Math.floor(Date.now() / 1000) <= 120, 'idTokenTTL applies');
  await t.rejects(login(other, { clientId: 'web', clientSecret: 'wrong', redirectURI: 'https://proxy.example.com/oauth2/callback' }));
});

t.test('restart on the same port with new keys', async (t) => {
  const first = await startDevIssuer({ tls });
  t.teardown(() => first.close()); // a second close is harmless
  const old = await login(first);
  const { port } = first;
  await first.close();
  const second = await startDevIssuer({ tls, port });
  t.teardown(() => second.close());
  t.equal(second.url, first.url, 'same URL, same iss');
  t.notSame(second.jwks.keys.map((k) => k.kid), first.jwks.keys.map((k) => k.kid), 'new keys');
  const fresh = await login(second);
  await verify(second, fresh.idToken);
  await t.rejects(verify(second, old.idToken), { code: 'ERR_JWKS_NO_MATCHING_KEY' }, 'old tokens no longer verify');

  // The private JWKS lets tests mint tokens the issuer would have signed.
  const key = second.jwks.keys.find((k) => k.alg === 'ES256')!;
  const minted = await new SignJWT({ email: 'x@example.com' })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid! })
    .setIssuer(second.url)
    .setAudience('kubernetes')
    .setExpirationTime('5m')
    .sign(await importJWK(key, 'ES256'));
  t.equal(decodeProtectedHeader(minted).kid, key.kid);
  await verify(second, minted);
});
