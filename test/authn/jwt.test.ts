/**
 * createJwtAuthenticator against a real HTTPS OpenID provider (the dev issuer,
 * oidc-provider): real id_tokens, tokens minted with the issuer's own private
 * keys for every way a token must be refused, key rotation, a kid flood, and
 * an issuer that is down when we start.
 */
import t from 'tap';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { pino } from 'pino';
import { Agent, request, type DiagnosticsChannel } from 'undici';
import type { AuthOutcome } from '../../src/request/identity.js';
import type { TokenAuthenticator } from '../../src/authn/authenticator.js';
import { CREDENTIAL_ID_KEY } from '../../src/authn/jwt/claims.js';
import { createJwtAuthenticator } from '../../src/authn/jwt/index.js';
import type { JwtAuthenticatorConfig } from '../../src/config/schema.js';
import { startDevIssuer, type DevIssuer } from '../../dev/issuer.js';
import { loginWithPassword } from '../../dev/login-client.js';
import { ensureDevPki } from '../../dev/pki.js';

const dir = await mkdtemp(join(tmpdir(), 'kfp-jwt-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const pki = await ensureDevPki(dir);
const tls = { cert: await readFile(pki.servingCert, 'utf8'), key: await readFile(pki.servingKey, 'utf8') };
const ca = await readFile(pki.servingCA, 'utf8');

/** Every log line any authenticator here writes, to check what they say and that no token is in them. */
const logLines: string[] = [];
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  }),
);
const tokensSeen: string[] = [];

const INTERVAL_MS = 2_000; // the default jwksRefetchInterval
const config = (url: string): JwtAuthenticatorConfig => ({
  issuer: { url, audiences: ['kubernetes'], certificateAuthority: ca },
  claimMappings: {
    username: { claim: 'email', prefix: '' },
    groups: { claim: 'groups', prefix: '' },
    uid: { claim: 'sub' },
  },
  claimValidationRules: [{ claim: 'preferred_username', requiredValue: 'demo' }],
  jwksRefetchInterval: INTERVAL_MS,
});

const authenticators: TokenAuthenticator[] = [];
function authenticator(url: string): TokenAuthenticator {
  const a = createJwtAuthenticator([config(url)], { logger, cacheTTLms: 10_000, cacheMaxEntries: 1_000 });
  authenticators.push(a);
  return a;
}
t.teardown(() => Promise.all(authenticators.map((a) => a.close())));

const issuers: DevIssuer[] = [];
async function startIssuer(opts: { port?: number; keys?: JWK[] } = {}): Promise<DevIssuer> {
  const issuer = await startDevIssuer({ tls, port: opts.port, jwks: opts.keys && { keys: opts.keys } });
  issuers.push(issuer);
  return issuer;
}
t.teardown(() => Promise.all(issuers.map((i) => i.close())));

async function waitFor(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function signingKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg: 'RS256', use: 'sig', kid: await calculateJwkThumbprint(jwk) };
}

const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token as the issuer would sign it for the demo user, with `claims` over those defaults (undefined removes one). */
async function mint(issuer: DevIssuer, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key?: JWK): Promise<string> {
  const jwk = key ?? issuer.jwks.keys[0];
  const token = await new SignJWT({
    iss: issuer.url,
    aud: 'kubernetes',
    sub: 'demo',
    email: 'demo@example.com',
    email_verified: true,
    preferred_username: 'demo',
    groups: ['developers', 'infrastructure'],
    iat: now(),
    exp: now() + 300,
    ...claims,
  })
    .setProtectedHeader({ alg: jwk.alg as string, kid: jwk.kid, ...header })
    .sign(await importJWK(jwk, jwk.alg));
  tokensSeen.push(token);
  return token;
}

async function authenticate(a: TokenAuthenticator, token: string): Promise<AuthOutcome> {
  tokensSeen.push(token);
  return a.authenticateToken(token);
}

/** Counts GETs of an issuer's jwks_uri, seen on undici's diagnostics channel (our fetches go through undici). */
function countRequests(url: string): { readonly count: number; reset(): void } {
  const target = new URL(url);
  let count = 0;
  const onCreate = (message: unknown) => {
    const { request: req } = message as DiagnosticsChannel.RequestCreateMessage;
    if (req.origin && new URL(String(req.origin)).origin === target.origin && req.path === target.pathname) count++;
  };
  diagnosticsChannel.subscribe('undici:request:create', onCreate);
  t.teardown(() => diagnosticsChannel.unsubscribe('undici:request:create', onCreate));
  return {
    get count() {
      return count;
    },
    reset: () => void (count = 0),
  };
}

let issuer = await startIssuer();
const jwt = authenticator(issuer.url);
await waitFor('the issuer to be ready', () => jwt.ready());

const agent = new Agent({ connect: { ca } });
t.teardown(() => agent.close());
const discovery = (await (await request(`${issuer.url}/.well-known/openid-configuration`, { dispatcher: agent })).body.json()) as { jwks_uri: string };
const jwksFetches = countRequests(discovery.jwks_uri);

t.test('a real id_token from the login flow maps to the demo user', async (t) => {
  const { idToken } = await loginWithPassword({
    issuerURL: issuer.url,
    ca,
    clientId: 'kubernetes',
    redirectURI: 'http://localhost:8000',
    username: 'demo',
    password: 'demo',
  });
  const outcome = await authenticate(jwt, idToken);
  t.match(outcome, {
    kind: 'authenticated',
    identity: { username: 'demo@example.com', uid: 'demo', groups: ['developers', 'infrastructure'], authMethod: 'jwt' },
  });
});

t.test('minted tokens: accepted and refused with the right reason', async (t) => {
  const key = issuer.jwks.keys[0];
  const publicKey = Object.fromEntries(Object.entries(key).filter(([k]) => !['d', 'p', 'q', 'dp', 'dq', 'qi'].includes(k))) as JWK;
  const publicPem = createPublicKey({ key: publicKey as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
  const good = await mint(issuer);
  const [head, , signature] = good.split('.');
  const defaults = JSON.parse(Buffer.from(good.split('.')[1], 'base64url').toString());

  const rows: ReadonlyArray<readonly [string, Promise<string> | string, string]> = [
    ['the defaults', good, 'authenticated'],
    ['an ES256 key of the issuer', mint(issuer, {}, {}, issuer.jwks.keys[1]), 'authenticated'],
    ['aud as an array with one match', mint(issuer, { aud: ['someone-else', 'kubernetes'] }), 'authenticated'],
    ['nbf 30 s ahead (within the 60 s leeway)', mint(issuer, { nbf: now() + 30 }), 'authenticated'],
    ['a string jti', mint(issuer, { jti: 'j-1' }), 'authenticated'],
    ['expired a moment ago (exp has no leeway)', mint(issuer, { exp: now() - 2 }), 'expired'],
    ['expired two minutes ago', mint(issuer, { exp: now() - 120 }), 'expired'],
    ['no exp', mint(issuer, { exp: undefined }), 'missing_claim'],
    ['exp not a number', mint(issuer, { exp: String(now() + 300) }), 'invalid_claim'],
    ['nbf 120 s ahead', mint(issuer, { nbf: now() + 120 }), 'not_yet_valid'],
    ['another issuer', mint(issuer, { iss: 'https://evil.example.com' }), 'unknown_issuer'],
    ['the issuer URL with a trailing slash', mint(issuer, { iss: `${issuer.url}/` }), 'unknown_issuer'],
    ['a wrong aud', mint(issuer, { aud: 'someone-else' }), 'bad_audience'],
    ['alg none', `${b64({ alg: 'none' })}.${b64(defaults)}.`, 'disallowed_algorithm'],
    ['HS256 keyed with the public key', new SignJWT(defaults).setProtectedHeader({ alg: 'HS256', kid: key.kid }).sign(new TextEncoder().encode(publicPem)), 'disallowed_algorithm'],
    ['an unknown kid', mint(issuer, {}, { kid: 'no-such-key' }), 'unknown_key'],
    ['a tampered payload', `${head}.${b64({ ...defaults, email: 'admin@example.com' })}.${signature}`, 'bad_signature'],
    ['email_verified false', mint(issuer, { email_verified: false }), 'email_not_verified'],
    ['no username claim', mint(issuer, { email: undefined }), 'missing_claim'],
    ['groups a number', mint(issuer, { groups: 42 }), 'invalid_claim'],
    ['the claim rule fails', mint(issuer, { preferred_username: 'mallory' }), 'claim_rule_failed'],
    ['not a JWT', 'not-a-jwt', 'malformed_token'],
  ];
  // Concurrently: the unknown kid waits for an allowed JWKS refetch, the rest need not wait for it.
  const outcomes = await Promise.all(rows.map(async ([, token]) => authenticate(jwt, await token)));
  rows.forEach(([name, , expected], i) => {
    const outcome = outcomes[i];
    if (expected === 'authenticated') t.equal(outcome.kind, 'authenticated', name);
    else t.same(outcome, { kind: 'rejected', reason: expected }, name);
  });
  t.match(outcomes[4], { identity: { extra: { [CREDENTIAL_ID_KEY]: ['JTI=j-1'] } } }, 'jti becomes the credential id');
});

t.test('a flood of bogus kids costs the issuer at most a couple of JWKS fetches', async (t) => {
  jwksFetches.reset();
  const started = performance.now();
  const tokens = await Promise.all(Array.from({ length: 200 }, (_, i) => mint(issuer, { jti: `flood-${i}` }, { kid: `bogus-${Math.random()}` })));
  const outcomes = await Promise.all(tokens.map((token) => authenticate(jwt, token)));
  const elapsed = performance.now() - started;
  t.ok(outcomes.every((o) => o.kind === 'rejected' && o.reason === 'unknown_key'), 'all refused as unknown_key');
  t.ok(jwksFetches.count >= 1 && jwksFetches.count <= 2, `JWKS fetched ${jwksFetches.count} time(s)`);
  t.ok(elapsed < INTERVAL_MS * 2 + 1_000, `the flood was answered in ${Math.round(elapsed)} ms`);
  t.comment(`200 bogus kids: ${jwksFetches.count} JWKS fetch(es), answered in ${Math.round(elapsed)} ms`);
});

t.test('key rotation: a token signed with a new key is accepted within the refetch interval', async (t) => {
  const newKey = await signingKey();
  const { port } = issuer;
  await issuer.close();
  issuer = await startIssuer({ port, keys: [newKey] });
  const token = await mint(issuer, {}, {}, newKey);

  const started = performance.now();
  let outcome = await authenticate(jwt, token);
  let attempts = 1;
  while (outcome.kind !== 'authenticated' && performance.now() - started < 10_000) {
    attempts++;
    outcome = await authenticate(jwt, token);
  }
  const elapsed = performance.now() - started;
  t.equal(outcome.kind, 'authenticated');
  t.equal(attempts, 1, 'the first request waited for the refetch instead of failing');
  t.ok(elapsed < INTERVAL_MS + 1_000, `accepted after ${Math.round(elapsed)} ms`);
  t.comment(`rotation right after a refetch: new key accepted after ${Math.round(elapsed)} ms`);

  // Once the interval has passed since the last fetch, the next new key costs one round trip.
  await sleep(INTERVAL_MS);
  const newerKey = await signingKey();
  await issuer.close();
  issuer = await startIssuer({ port, keys: [newKey, newerKey] });
  const newer = await mint(issuer, {}, {}, newerKey);
  const again = performance.now();
  t.equal((await authenticate(jwt, newer)).kind, 'authenticated');
  const quick = performance.now() - again;
  t.ok(quick < 1_000, `accepted after ${Math.round(quick)} ms`);
  t.comment(`rotation with no recent refetch: new key accepted after ${Math.round(quick)} ms`);

  // Without a kid, every key of the right type is tried (as go-oidc does).
  const noKid = await mint(issuer, {}, { kid: undefined }, newerKey);
  t.equal((await authenticate(jwt, noKid)).kind, 'authenticated', 'no kid: the matching one of two keys verifies it');
  const stranger = await mint(issuer, {}, { kid: undefined }, await signingKey());
  t.same(await authenticate(jwt, stranger), { kind: 'rejected', reason: 'bad_signature' }, 'no kid: none of the keys verifies it');
});

t.test('an issuer that is down at start: not ready, then ready once it comes up', async (t) => {
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const late = authenticator(url);
  const key = await signingKey();
  const token = await mint({ url, jwks: { keys: [key] } } as unknown as DevIssuer, {}, {}, key);

  t.notOk(late.ready());
  t.same(await authenticate(late, token), { kind: 'rejected', reason: 'issuer_not_ready' });
  await waitFor('a log line saying why it waits', () => logLines.some((l) => l.includes(url) && l.includes('not ready yet')));

  await startIssuer({ port, keys: [key] });
  await waitFor('the late issuer to be ready', () => late.ready());
  t.match(await authenticate(late, token), { kind: 'authenticated', identity: { username: 'demo@example.com' } });
});

t.test('an issuer.url that differs from the discovery document (a trailing slash) never becomes ready', async (t) => {
  const slashed = `${issuer.url}/`;
  const a = authenticator(slashed);
  await waitFor('the mismatch to be logged', () => logLines.some((l) => l.includes(JSON.stringify(slashed).slice(1, -1)) && l.includes('must match exactly')));
  t.notOk(a.ready());
  t.same(await authenticate(a, await mint(issuer)), { kind: 'rejected', reason: 'unknown_issuer' }, 'iss without the slash is not this issuer');
  t.same(await authenticate(a, await mint(issuer, { iss: slashed })), { kind: 'rejected', reason: 'issuer_not_ready' });
});

t.test('no token ever reaches the logs', async (t) => {
  t.ok(logLines.length > 0, 'there are logs to check');
  const all = logLines.join('');
  const leaked = tokensSeen.filter((token) => all.includes(token) || all.includes(token.split('.')[2] || token));
  t.same(leaked, []);
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
