/**
 * authentication.configFile reloaded as kube-apiserver reloads
 * --authentication-config: a good file is swapped in, a bad one keeps the last
 * good configuration (logged, counted), a ConfigMap's `..data` symlink swap is
 * seen, requests in flight finish on the old authenticator, which is closed
 * after them, and the token cache does not outlive its configuration (against
 * a real issuer).
 */
import t, { type Test } from 'tap';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { importJWK, SignJWT, type JWK } from 'jose';
import { pino } from 'pino';
import type { TokenAuthenticator } from '../../src/authn/authenticator.js';
import { createReloadingJwtAuthenticator, type ReloadingJwtOptions } from '../../src/authn/reloading-jwt.js';
import { AuthenticationConfigError } from '../../src/config/authentication-config.js';
import type { JwtAuthenticatorConfig } from '../../src/config/schema.js';
import { createMetrics } from '../../src/observe/metrics.js';
import { authenticated, type AuthOutcome } from '../../src/request/identity.js';
import { startDevIssuer } from '../../dev/issuer.js';
import { ensureDevPki } from '../../dev/pki.js';

const dir = await mkdtemp(join(tmpdir(), 'kfp-reload-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const HEAD = 'apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n';
/** A file with one issuer whose usernames get `prefix`. */
const fileFor = (url: string, prefix: string, extra = '') =>
  `${HEAD}jwt:\n  - issuer: { url: "${url}", audiences: [kubernetes]${extra} }\n    claimMappings: { username: { claim: sub, prefix: "${prefix}" } }\n`;

const logLines: string[] = [];
const logger = pino({ level: 'debug' }, new Writable({ write: (chunk, _e, done) => (logLines.push(String(chunk)), done()) }));

/** A stand-in authenticator per configuration: the user is the file's prefix + token; `hold` keeps answers pending. */
interface Built {
  readonly prefix: string;
  closed: boolean;
  ready: boolean;
}
function fakeBuild() {
  const built: Built[] = [];
  let hold: Promise<void> | undefined;
  const options = { readyWhenBuilt: true };
  const build = (configs: readonly JwtAuthenticatorConfig[]): TokenAuthenticator => {
    const mapping = configs[0]?.claimMappings.username;
    const state: Built = { prefix: mapping?.prefix ?? '', closed: false, ready: options.readyWhenBuilt };
    built.push(state);
    return {
      async authenticateToken(token): Promise<AuthOutcome> {
        if (state.closed) throw new Error('used after close');
        await hold;
        return authenticated({ username: `${state.prefix}${token}`, groups: [], extra: {}, authMethod: 'jwt' });
      },
      ready: () => state.ready,
      close: async () => {
        state.closed = true;
      },
    };
  };
  return {
    built,
    build,
    options,
    holdAnswers() {
      let release!: () => void;
      hold = new Promise((r) => (release = r));
      return () => {
        hold = undefined;
        release();
      };
    },
  };
}

const username = async (jwt: TokenAuthenticator, token: string) => {
  const outcome = await jwt.authenticateToken(token);
  return outcome.kind === 'authenticated' ? outcome.identity.username : outcome.kind;
};

async function metricValues(metrics: ReturnType<typeof createMetrics>): Promise<string> {
  return (await metrics.registry.metrics())
    .split('\n')
    .filter((l) => l.startsWith('kfp_authentication_config_controller_') && !l.includes('timestamp'))
    .join('\n');
}

function start(t: Test, file: string, more: Partial<ReloadingJwtOptions> = {}) {
  const fake = fakeBuild();
  const metrics = createMetrics();
  const jwt = createReloadingJwtAuthenticator({ file, logger, metrics, cacheTTLms: 60_000, cacheMaxEntries: 100, intervalMs: 3_600_000, build: fake.build, ...more });
  t.teardown(() => jwt.close());
  return { jwt, fake, metrics };
}

t.test('a good file is swapped in; a bad one keeps the last good one, logged and counted once', async (t) => {
  const file = join(dir, 'plain.yaml');
  writeFileSync(file, fileFor('https://a.example.com', 'one:'));
  const { jwt, fake, metrics } = start(t, file);
  const first = jwt.configHash();
  t.equal(await username(jwt, 'x'), 'one:x');
  t.equal(await jwt.reload(), 'unchanged', 'the same text is no reload');
  t.match(await metricValues(metrics), `kfp_authentication_config_controller_last_config_info{hash="${first}"} 1`);

  writeFileSync(file, fileFor('https://a.example.com', 'two:'));
  t.equal(await jwt.reload(), 'reloaded');
  t.equal(await username(jwt, 'x'), 'two:x');
  t.ok(fake.built[0].closed, 'the old authenticator is closed (nothing was in flight)');
  t.not(jwt.configHash(), first);

  const before = logLines.length;
  writeFileSync(file, `${HEAD}jwt:\n  - issuer: { url: "https://a.example.com", audiences: [kubernetes] }\n    claimMappings: { username: { claim: sub } }\n`);
  t.equal(await jwt.reload(), 'failed');
  t.equal(await username(jwt, 'x'), 'two:x', 'the last good configuration still answers');
  t.equal(await jwt.reload(), 'unchanged', 'a bad file is not retried until it changes (kube tracks its text)');
  const logged = logLines.slice(before).join('');
  t.match(logged, /jwt\[0\]\.claimMappings\.username\.prefix: prefix is required/);
  t.match(logged, /keeping the last good configuration/);

  writeFileSync(file, `${HEAD}anonymous: { enabled: false }\n`);
  t.equal(await jwt.reload(), 'failed', 'anonymous may not change after start');
  t.match(logLines.join(''), /anonymous: Forbidden: changed from initial configuration file/);

  rmSync(file);
  t.equal(await jwt.reload(), 'failed', 'a missing file is a failure');
  t.equal(await jwt.reload(), 'failed', 'and retried: it may come back');
  writeFileSync(file, fileFor('https://a.example.com', 'three:'));
  t.equal(await jwt.reload(), 'reloaded');
  t.equal(await username(jwt, 'x'), 'three:x');

  const values = await metricValues(metrics);
  t.match(values, 'kfp_authentication_config_controller_automatic_reloads_total{status="success"} 2');
  t.match(values, 'kfp_authentication_config_controller_automatic_reloads_total{status="failure"} 4');
  t.match(values, `kfp_authentication_config_controller_last_config_info{hash="${jwt.configHash()}"} 1`);
  t.equal(values.match(/last_config_info\{/g)?.length, 1, 'only the hash in use');
  t.match(await metrics.registry.metrics(), /kfp_authentication_config_controller_automatic_reload_last_timestamp_seconds\{status="failure"\} \d+/);
});

t.test('a file replaced as Kubernetes replaces a ConfigMap volume (a ..data symlink swap) is reloaded by the poll', async (t) => {
  const mount = join(dir, 'configmap');
  mkdirSync(mount);
  const publish = (version: number, text: string) => {
    const data = `..2026_12_04_${version}`;
    mkdirSync(join(mount, data));
    writeFileSync(join(mount, data, 'auth.yaml'), text);
    symlinkSync(data, join(mount, '..data_tmp'));
    renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
  };
  publish(1, fileFor('https://a.example.com', 'v1:'));
  symlinkSync('..data/auth.yaml', join(mount, 'auth.yaml'));
  const { jwt } = start(t, join(mount, 'auth.yaml'), { intervalMs: 50 });
  t.equal(await username(jwt, 'x'), 'v1:x');
  publish(2, fileFor('https://a.example.com', 'v2:'));
  rmSync(join(mount, '..2026_12_04_1'), { recursive: true });
  const deadline = Date.now() + 5_000;
  while ((await username(jwt, 'x')) !== 'v2:x' && Date.now() < deadline) await sleep(20);
  t.equal(await username(jwt, 'x'), 'v2:x');
});

t.test('requests in flight finish on the old configuration; it is closed once they are done', async (t) => {
  const file = join(dir, 'inflight.yaml');
  writeFileSync(file, fileFor('https://a.example.com', 'old:'));
  const { jwt, fake } = start(t, file);
  const release = fake.holdAnswers();
  const pending = username(jwt, 'slow');
  writeFileSync(file, fileFor('https://a.example.com', 'new:'));
  t.equal(await jwt.reload(), 'reloaded');
  t.notOk(fake.built[0].closed, 'not closed while a request is in it');
  release();
  t.equal(await pending, 'old:slow', 'the request that began before the swap ends with the old answer');
  await sleep(0);
  t.ok(fake.built[0].closed, 'closed once it is done');
  t.equal(await username(jwt, 'fast'), 'new:fast');
});

t.test('a new configuration whose issuers do not load is not swapped in, and is retried', async (t) => {
  const file = join(dir, 'notready.yaml');
  writeFileSync(file, fileFor('https://a.example.com', 'old:'));
  const { jwt, fake } = start(t, file, { readyTimeoutMs: 200 });
  fake.options.readyWhenBuilt = false;
  writeFileSync(file, fileFor('https://b.example.com', 'new:'));
  const wait = jwt.reload();
  t.equal(await wait, 'failed');
  t.ok(fake.built[1].closed, 'the candidate is closed');
  t.notOk(fake.built[0].closed, 'the one in use is not');
  t.equal(await username(jwt, 'x'), 'old:x');
  fake.options.readyWhenBuilt = true;
  t.equal(await jwt.reload(), 'reloaded', 'retried at the next look, since the file did not change');
  t.equal(await username(jwt, 'x'), 'new:x');
});

t.test('a file that does not pair with the browser session is refused at start and on reload', async (t) => {
  const file = join(dir, 'session.yaml');
  writeFileSync(file, fileFor('https://b.example.com', ''));
  const session = { oidc: { issuerURL: 'https://a.example.com', clientID: 'kubernetes' } } as ReloadingJwtOptions['session'];
  t.throws(() => start(t, file, { session }), AuthenticationConfigError);
  writeFileSync(file, fileFor('https://a.example.com', 'ok:'));
  const { jwt } = start(t, file, { session });
  writeFileSync(file, fileFor('https://b.example.com', 'moved:'));
  t.equal(await jwt.reload(), 'failed');
  t.match(logLines.join(''), /no jwt entry has issuer\.url https:\/\/a\.example\.com/);
  t.equal(await username(jwt, 'x'), 'ok:x');
});

t.test('the token cache does not outlive its configuration (a real issuer, a long cache)', async (t) => {
  const pki = await ensureDevPki(join(dir, 'pki'));
  const issuer = await startDevIssuer({ tls: { cert: await readFile(pki.servingCert, 'utf8'), key: await readFile(pki.servingKey, 'utf8') } });
  t.teardown(() => issuer.close());
  const ca = (await readFile(pki.servingCA, 'utf8')).trim().split('\n').join('\n        ');
  const caBlock = `\n      certificateAuthority: |\n        ${ca}\n`;
  const real = (prefix: string) =>
    `${HEAD}jwt:\n  - issuer:\n      url: "${issuer.url}"\n      audiences: [kubernetes]${caBlock}    claimMappings: { username: { claim: sub, prefix: "${prefix}" } }\n`;
  const file = join(dir, 'real.yaml');
  writeFileSync(file, real('before:'));
  const metrics = createMetrics();
  const jwt = createReloadingJwtAuthenticator({ file, logger, metrics, cacheTTLms: 3_600_000, cacheMaxEntries: 100, intervalMs: 3_600_000 });
  t.teardown(() => jwt.close());
  const key = issuer.jwks.keys.find((k) => k.kty === 'RSA') as JWK & { kid: string };
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ iss: issuer.url, aud: 'kubernetes', sub: 'alice', iat: now, exp: now + 600 })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .sign(await importJWK(key, 'RS256'));
  const deadline = Date.now() + 10_000;
  while (!jwt.ready() && Date.now() < deadline) await sleep(20);
  t.equal(await username(jwt, token), 'before:alice');
  t.equal(await username(jwt, token), 'before:alice', 'cached');
  writeFileSync(file, real('after:'));
  t.equal(await jwt.reload(), 'reloaded');
  t.equal(await username(jwt, token), 'after:alice', 'the cached identity of the old file is not answered');
  t.notOk(logLines.join('').includes(token), 'no token in any log line');
});
