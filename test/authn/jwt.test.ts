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
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
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
import { freePort } from '../helpers/ports.js';
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
    extra: [],
  },
  claimValidationRules: [{ claim: 'preferred_username', requiredValue: 'demo' }],
  userValidationRules: [],
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

/** A token signed by the issuer's first (RS256) key under another RSA algorithm. */
async function mintAs(alg: string): Promise<string> {
  const { alg: _published, ...jwk } = issuer.jwks.keys[0];
  const token = await new SignJWT({ iss: issuer.url, aud: 'kubernetes', sub: 'demo', email: 'demo@example.com', email_verified: true, preferred_username: 'demo', exp: now() + 300 })
    .setProtectedHeader({ alg, kid: jwk.kid })
    .sign(await importJWK(jwk, alg));
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
    // go-oidc's jsonTime (coreos/go-oidc v2.5.0 oidc.go): no exp is the zero time, so expired.
    ['no exp', mint(issuer, { exp: undefined }), 'expired'],
    // Typed decoding of standard claims, as go-oidc's idToken struct (kube 1.37, verified against the real apiserver).
    ['exp a numeric string', mint(issuer, { exp: String(now() + 300) }), 'authenticated'],
    ['exp a fraction', mint(issuer, { exp: now() + 300.7 }), 'authenticated'],
    ['exp a string that is no number', mint(issuer, { exp: 'soon' }), 'invalid_claim'],
    ['exp null (json.Number("") is no number)', mint(issuer, { exp: null }), 'invalid_claim'],
    // Beyond int64, Go's int64(float) on amd64 is the smallest int64: long expired, not "never".
    ['exp 1e20 (beyond int64)', mint(issuer, { exp: 1e20 }), 'expired'],
    // Beyond float64, ParseFloat's range error refuses the token.
    ['exp "1e400" (beyond float64)', mint(issuer, { exp: '1e400' }), 'invalid_claim'],
    ['iat null', mint(issuer, { iat: null }), 'invalid_claim'],
    ['iat a numeric string', mint(issuer, { iat: String(now()) }), 'authenticated'],
    ['iat a boolean', mint(issuer, { iat: true }), 'invalid_claim'],
    ['nbf null (a nil *jsonTime: no nbf)', mint(issuer, { nbf: null }), 'authenticated'],
    ['nbf a numeric string 120 s ahead', mint(issuer, { nbf: String(now() + 120) }), 'not_yet_valid'],
    ['sub a number', mint(issuer, { sub: 42 }), 'invalid_claim'],
    ['sub null', mint(issuer, { sub: null }), 'authenticated'],
    ['nonce a number', mint(issuer, { nonce: 1 }), 'invalid_claim'],
    ['at_hash a list', mint(issuer, { at_hash: ['x'] }), 'invalid_claim'],
    // Keys Go's decoder matches case-insensitively, each decoded into the field in turn: the
    // last good one wins, but any that fails fails the token, and null leaves a string as it was.
    ['EXP instead of exp', mint(issuer, { exp: undefined, EXP: now() + 300 }), 'authenticated'],
    ['exp past, then EXP ahead: the last wins', mint(issuer, { exp: now() - 100, EXP: now() + 300 }), 'authenticated'],
    ['exp ahead, then EXP past: the last wins', mint(issuer, { exp: now() + 300, Exp: now() - 100 }), 'expired'],
    ['exp null, then EXP ahead: the null fails', mint(issuer, { exp: null, EXP: now() + 300 }), 'invalid_claim'],
    ['exp a word, then EXP ahead: the word fails', mint(issuer, { exp: 'soon', EXP: now() + 300 }), 'invalid_claim'],
    ['sub a number, then SUB a string: the number fails', mint(issuer, { sub: 7, SUB: 'x' }), 'invalid_claim'],
    ['iss, then ISS null: iss stays', mint(issuer, { ISS: null }), 'authenticated'],
    ['iss, then a foreign ISS: the last string wins', mint(issuer, { ISS: 'https://evil.example.com' }), 'unknown_issuer'],
    ['nbf 120 s ahead, then NBF null: the pointer is nil again', mint(issuer, { nbf: now() + 120, NBF: null }), 'authenticated'],
    ['_claim_names, then _CLAIM_NAMES: Go adds to the same map', mint(issuer, { _claim_names: { roles: 'gone' }, _CLAIM_NAMES: { other: 'src1' }, _claim_sources: { src1: { endpoint: 'https://x' } } }), 'invalid_claim'],
    ['_claim_names, then _CLAIM_NAMES null: the map is nil', mint(issuer, { _claim_names: { roles: 'gone' }, _CLAIM_NAMES: null }), 'authenticated'],
    ['a source whose endpoint, then ENDPOINT is a number', mint(issuer, { _claim_names: { roles: 'src1' }, _claim_sources: { src1: { endpoint: 'https://x', ENDPOINT: 5 } } }), 'invalid_claim'],
    ['AUD instead of aud', mint(issuer, { aud: undefined, AUD: 'kubernetes' }), 'authenticated'],
    ['NBF 120 s ahead', mint(issuer, { NBF: now() + 120 }), 'not_yet_valid'],
    ['ISS instead of iss', mint(issuer, { iss: undefined, ISS: issuer.url }), 'authenticated'],
    ['iſs with a long s (Go folds ſ to s)', mint(issuer, { iss: undefined, iſs: issuer.url }), 'authenticated'],
    // Distributed claims (go-oidc verify.go): a claim name whose source is missing fails the token.
    ['_claim_names naming a missing source', mint(issuer, { _claim_names: { roles: 'src1' } }), 'invalid_claim'],
    ['_claim_names with an empty source', mint(issuer, { _claim_names: { roles: '' }, _claim_sources: { '': { endpoint: 'https://x' } } }), 'invalid_claim'],
    ['_claim_sources not an object', mint(issuer, { _claim_sources: 'x' }), 'invalid_claim'],
    ['distributed claim for another claim: ignored', mint(issuer, { _claim_names: { roles: 'src1' }, _claim_sources: { src1: { endpoint: 'https://x' } } }), 'authenticated'],
    // The groups claim distributed to an endpoint that cannot be reached: refused, as kube refuses it.
    ['groups claim distributed to an unreachable endpoint', mint(issuer, { groups: undefined, _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://x' } } }), 'invalid_claim'],
    ['groups claim distributed without an endpoint (aggregated): no groups', mint(issuer, { groups: undefined, _claim_names: { groups: 'src1' }, _claim_sources: { src1: { JWT: 'x' } } }), 'authenticated'],
    // go-jose verifies with the key whatever the JWK's own alg says (kube 1.37, verified against the real apiserver).
    ['PS256 signature with a JWK published as RS256', mintAs('PS256'), 'authenticated'],
    ['RS384 signature with a JWK published as RS256', mintAs('RS384'), 'authenticated'],
    ['an RS256 signature under an ES256 header', `${b64({ alg: 'ES256', kid: key.kid })}.${good.split('.')[1]}.${signature}`, 'bad_signature'],
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

t.test('distributed groups (oidc.go claimResolver): fetched from a real HTTPS endpoint, its JWT held to the issuer\'s keys and audience', async (t) => {
  const served = new Map<string, { status: number; body: string }>();
  const authorizations: Array<string | undefined> = [];
  const server = createHttpsServer(tls, (req, res) => {
    authorizations.push(req.headers.authorization);
    const found = served.get(req.url ?? '');
    res.writeHead(found?.status ?? 404).end(found?.body ?? 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let n = 0;
  /** A token whose groups live at an endpoint answering `body` (a JWT, or text) with `status`. */
  const distributed = async (body: Promise<string> | string, opts: { status?: number; accessToken?: string; claims?: Record<string, unknown> } = {}) => {
    const path = `/claims/${++n}`;
    served.set(path, { status: opts.status ?? 200, body: await body });
    const source = { endpoint: `${base}${path}`, ...(opts.accessToken === undefined ? {} : { access_token: opts.accessToken }) };
    return mint(issuer, { groups: undefined, _claim_names: { groups: 'src1' }, _claim_sources: { src1: source }, ...opts.claims });
  };
  const groupsJwt = (claims: Record<string, unknown> = {}, key?: JWK) => mint(issuer, { groups: ['dist1', 'dist2'], ...claims }, {}, key);
  const stranger = await signingKey();

  const rows: ReadonlyArray<readonly [string, Promise<string>, string[] | string]> = [
    ['groups from the endpoint', distributed(groupsJwt(), { accessToken: 'opaque' }), ['dist1', 'dist2']],
    ['a string group from the endpoint', distributed(groupsJwt({ groups: 'one' })), ['one']],
    ['a normal groups claim wins: the endpoint is not asked', distributed(groupsJwt(), { claims: { groups: ['inline'] } }), ['inline']],
    ['the endpoint answers 404', distributed('not found', { status: 404 }), 'invalid_claim'],
    ['the endpoint answers text', distributed('not a jwt'), 'invalid_claim'],
    ["the endpoint's JWT is for another audience", distributed(groupsJwt({ aud: 'someone-else' })), 'invalid_claim'],
    ["the endpoint's JWT has expired", distributed(groupsJwt({ exp: now() - 60 })), 'invalid_claim'],
    ["the endpoint's JWT lacks the claim", distributed(groupsJwt({ groups: undefined })), 'invalid_claim'],
    // The attacker's case: a JWT naming the issuer but signed with a key it never published.
    ["the endpoint's JWT is signed by a key the issuer does not publish", distributed(groupsJwt({}, stranger)), 'invalid_claim'],
    ["the endpoint's JWT names another issuer", distributed(groupsJwt({ iss: 'https://evil.example.com' })), 'invalid_claim'],
    ['_claim_names without _claim_sources', mint(issuer, { groups: undefined, _claim_names: { groups: 'src1' } }), 'invalid_claim'],
  ];
  const outcomes = await Promise.all(rows.map(async ([, token]) => authenticate(jwt, await token)));
  rows.forEach(([name, , expected], i) => {
    if (typeof expected === 'string') t.same(outcomes[i], { kind: 'rejected', reason: expected }, name);
    else t.match(outcomes[i], { kind: 'authenticated', identity: { groups: expected } }, name);
  });
  t.ok(authorizations.includes('Bearer opaque'), 'the access token is sent as a bearer token');
  t.ok(authorizations.includes(undefined), 'no Authorization header without an access token');
  t.equal(authorizations.length, rows.length - 2, 'asked once per token that names an endpoint and lacks the claim');

  // Another issuer's JWT: discovered on first use (kube's asyncIDTokenVerifier), refused until then, with this entry's audiences.
  const other = await startIssuer();
  const fromOther = await distributed(mint(other, { groups: ['other1'] }));
  const otherWrongAudience = await distributed(mint(other, { groups: ['other1'], aud: 'someone-else' }));
  const deadline = Date.now() + 15_000;
  let outcome = await authenticate(jwt, fromOther);
  while (outcome.kind !== 'authenticated' && Date.now() < deadline) {
    await sleep(100);
    outcome = await authenticate(jwt, fromOther);
  }
  t.match(outcome, { kind: 'authenticated', identity: { groups: ['other1'] } }, "another issuer's JWT, once that issuer is discovered");
  t.same(await authenticate(jwt, otherWrongAudience), { kind: 'rejected', reason: 'invalid_claim' }, "another issuer's JWT for another audience");
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

