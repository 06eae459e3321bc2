import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { fileTokenSource } from '../../src/authn/token-review/kubeconfig.js';
import { createTokenReviewAuthenticator, tokenReviewsURL } from '../../src/authn/token-review/token-review.js';
import { createWebhookTokenAuthenticator } from '../../src/authn/token-review/webhook.js';
import { checkCredentialFiles } from '../../src/config/credential-files.js';
import { parseKubeconfig } from '../../src/config/kubeconfig.js';
import { review, startTokenWebhook, type WebhookReply } from '../helpers/token-webhook.js';

const dir = mkdtempSync(join(tmpdir(), 'kfp-review-'));
const alice = review({ authenticated: true, user: { username: 'alice', uid: 'u-1', groups: ['dev'], extra: { 'example.com/team': ['a', 'b'] } } });

function logged() {
  const lines: string[] = [];
  return { logger: pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) }), lines };
}

async function setup(t: Test, answer: (token: string) => WebhookReply, cacheTTL = 120_000, timeout = 2_000) {
  const hook = await startTokenWebhook(answer);
  t.teardown(() => hook.close());
  let now = 1_000_000;
  const log = logged();
  const auth = await createWebhookTokenAuthenticator({ configFile: hook.kubeconfig(dir, { token: 'proxy-credential' }), cacheTTL, timeout }, log.logger, {
    retryDelayMs: 20,
    now: () => now,
  });
  t.teardown(() => auth.close());
  return { hook, auth, log, tick: (ms: number) => (now += ms) };
}

t.test('an authenticated answer is the identity, sent with the kubeconfig token, cached for the TTL', async (t) => {
  const { hook, auth, tick } = await setup(t, () => ({ body: alice }));
  const expected = { kind: 'authenticated', identity: { username: 'alice', uid: 'u-1', groups: ['dev'], extra: { 'example.com/team': ['a', 'b'] }, authMethod: 'webhook' } };
  t.same(await auth.authenticateToken('tok-a'), expected);
  t.same(hook.tokens, ['tok-a']);
  t.same(hook.authorizations, ['Bearer proxy-credential']);
  tick(119_000);
  t.same(await auth.authenticateToken('tok-a'), expected);
  t.equal(hook.tokens.length, 1, 'served from the cache within the TTL');
  tick(2_000);
  await auth.authenticateToken('tok-a');
  t.equal(hook.tokens.length, 2, 'asked again after the TTL');
});

t.test('a plain "no" is cached for the TTL too; a "no" with status.error is not', async (t) => {
  let allow = false;
  const { hook, auth, tick } = await setup(t, (token) =>
    allow ? { body: alice } : { body: review(token === 'with-error' ? { authenticated: false, error: 'ldap down' } : { authenticated: false }) },
  );
  t.same(await auth.authenticateToken('plain'), { kind: 'rejected', reason: 'token_review_denied' });
  t.same(await auth.authenticateToken('with-error'), { kind: 'rejected', reason: 'token_review_denied' });
  allow = true;
  t.same(await auth.authenticateToken('plain'), { kind: 'rejected', reason: 'token_review_denied' }, 'still denied from the cache');
  t.equal((await auth.authenticateToken('with-error')).kind, 'authenticated', 'an error is asked again');
  tick(121_000);
  t.equal((await auth.authenticateToken('plain')).kind, 'authenticated');
  t.same(hook.tokens, ['plain', 'with-error', 'with-error', 'plain']);
});

t.test('fail closed: timeout, 500 (retried), garbage, wrong kind, down; errors are not cached', async (t) => {
  const unavailable = { kind: 'rejected', reason: 'token_review_unavailable' };
  let reply: WebhookReply = 'hang';
  const { hook, auth, log } = await setup(t, () => reply, 120_000, 500);
  const started = Date.now();
  t.same(await auth.authenticateToken('secret-hang'), unavailable);
  t.ok(Date.now() - started < 1_500, 'the timeout bounds the wait');
  reply = { status: 500, body: { kind: 'Status' } };
  t.same(await auth.authenticateToken('secret-500'), unavailable);
  t.equal(hook.tokens.filter((x) => x === 'secret-500').length > 1, true, 'a 500 is retried, as kube does');
  reply = { status: 403, body: alice };
  t.same(await auth.authenticateToken('secret-403'), unavailable);
  t.equal(hook.tokens.filter((x) => x === 'secret-403').length, 1, 'a 403 is not retried');
  for (const body of ['not json', { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1beta1', status: { authenticated: true, user: { username: 'x' } } }, review({ authenticated: 'true', user: { username: 'x' } }), review({ authenticated: true, user: { username: '' } }), review({ authenticated: true, user: { username: 'x', groups: 'admins' } })]) {
    reply = { body };
    t.same(await auth.authenticateToken('secret-garbage'), unavailable, JSON.stringify(body));
  }
  reply = 'destroy';
  t.same(await auth.authenticateToken('secret-destroy'), unavailable);
  reply = { body: alice };
  t.equal((await auth.authenticateToken('secret-garbage')).kind, 'authenticated', 'no error was cached');
  await hook.close();
  t.same(await auth.authenticateToken('secret-down'), unavailable);
  const text = log.lines.join('');
  t.match(text, /token review unavailable/);
  t.notMatch(text, /secret-/, 'no token in the log');
});

t.test('kubeconfig: tokenFile re-read, client certificate problems, missing server/context/user are problems naming the key', async (t) => {
  const base = { apiVersion: 'v1', kind: 'Config', 'current-context': 'c', contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }] };
  const bad = (doc: unknown) => {
    const problems = parseKubeconfig(JSON.stringify(doc), join(dir, 'k.yaml'));
    return problems.ok ? [] : problems.problems;
  };
  t.match(bad({ ...base, clusters: [{ name: 'k', cluster: {} }], users: [{ name: 'u', user: {} }] }), [/cluster "k" has no server/]);
  t.match(bad({ ...base, clusters: [{ name: 'k', cluster: { server: 'http://x' } }], users: [{ name: 'u', user: {} }] }), [/not an https:\/\/ URL/]);
  t.match(bad({ ...base, clusters: [], users: [] }), [/cluster "k" .* is not in clusters/, /user "u" .* is not in users/]);
  t.match(bad({ ...base, 'current-context': undefined }), [/no current-context/]);
  t.match(bad({ ...base, clusters: [{ name: 'k', cluster: { server: 'https://x', 'insecure-skip-tls-verify': true } }], users: [{ name: 'u', user: { 'client-certificate': 'a.crt', exec: {} } }] }), [
    /insecure-skip-tls-verify/,
    /needs both a client certificate and its key/,
    /uses exec/,
  ]);

  const file = join(dir, 'no-server.kubeconfig');
  writeFileSync(file, JSON.stringify({ ...base, clusters: [{ name: 'k', cluster: {} }], users: [{ name: 'u', user: { tokenFile: 'nowhere' } }] }));
  const problems = checkCredentialFiles({ authentication: { webhook: { configFile: file }, tokenReview: { kubeconfig: file } } });
  t.same(problems.map((p) => p.path), ['authentication.webhook.configFile', 'authentication.tokenReview.kubeconfig']);
  t.match(problems[0].message, /has no server; write server: https:\/\/host:port\/path/);
  const missingFile = join(dir, 'missing-file.kubeconfig');
  writeFileSync(missingFile, JSON.stringify({ ...base, clusters: [{ name: 'k', cluster: { server: 'https://x' } }], users: [{ name: 'u', user: { tokenFile: 'nowhere' } }] }));
  t.match(checkCredentialFiles({ authentication: { webhook: { configFile: missingFile } } }), [{ path: 'authentication.webhook.configFile', message: /tokenFile .*nowhere not found/ }]);
});

t.test('TokenReview mode: the in-cluster service account, its token re-read as it rotates', async (t) => {
  const hook = await startTokenWebhook(() => ({ body: alice }), '/apis/authentication.k8s.io/v1/tokenreviews');
  t.teardown(() => hook.close());
  const sa = mkdtempSync(join(tmpdir(), 'kfp-sa-'));
  writeFileSync(join(sa, 'token'), 'sa-token-1\n');
  writeFileSync(join(sa, 'ca.crt'), hook.caPem);
  const port = new URL(hook.url).port;
  const auth = await createTokenReviewAuthenticator({ cacheTTL: 0, timeout: 2_000 }, pino({ level: 'silent' }), {
    serviceAccountDir: sa,
    env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port },
  });
  t.teardown(() => auth.close());
  t.same((await auth.authenticateToken('user-token')).kind, 'authenticated');
  t.same(hook.authorizations, ['Bearer sa-token-1']);
  await t.rejects(createTokenReviewAuthenticator({ cacheTTL: 0, timeout: 2_000 }, pino({ level: 'silent' }), { serviceAccountDir: sa, env: {} }), /not running in a cluster/);
  t.equal(tokenReviewsURL(new URL('https://h:6443/prefix/')).href, 'https://h:6443/prefix/apis/authentication.k8s.io/v1/tokenreviews');
});

t.test('tokenFile is re-read a minute later, as client-go does', async (t) => {
  const file = join(dir, 'rotating-token');
  writeFileSync(file, 'one\n');
  let now = 0;
  const source = fileTokenSource(file, () => now);
  writeFileSync(file, 'two\n');
  t.equal(await source(), 'one');
  now += 60_000;
  t.equal(await source(), 'two');
});

t.test('a failed re-read keeps the last good token, as client-go does', async (t) => {
  const file = join(dir, 'vanishing-token');
  writeFileSync(file, 'kept\n');
  let now = 0;
  const source = fileTokenSource(file, () => now);
  rmSync(file);
  now += 60_000;
  t.equal(await source(), 'kept');
});

t.test('kubeconfig shapes client-go refuses are problems', async (t) => {
  const file = join(dir, 'k.yaml');
  const problems = (source: string) => {
    const result = parseKubeconfig(source, file);
    return result.ok ? [] : result.problems;
  };
  t.match(problems('a: [b'), [/not valid YAML/]);
  t.match(problems('- a list'), [/not a kubeconfig/]);
  t.match(problems(JSON.stringify({ 'current-context': 'x', contexts: [] })), [/current-context "x" is not in contexts \(\(none\)\)/]);
  const doc = (cluster: object, user: object) =>
    JSON.stringify({ 'current-context': 'c', contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }], clusters: [{ name: 'k', cluster }], users: [{ name: 'u', user }] });
  t.match(problems(doc({ server: 'https://x', 'certificate-authority': 'ca.crt', 'certificate-authority-data': 'eA==' }, {})), [/both certificate-authority-data and certificate-authority/]);
  t.match(problems(doc({ server: 'https://x', 'certificate-authority-data': 'bm90IGEgcGVt' }, {})), [/not base64 of a PEM block/]);
  t.match(problems(JSON.stringify({ 'current-context': 'c', contexts: [{ name: 'c', context: {} }] })), [/names no cluster/, /names no user/]);
  const ok = parseKubeconfig(doc({ server: 'https://x/p', 'certificate-authority': 'ca.crt', 'tls-server-name': 'api' }, { token: 't', tokenFile: 'f' }), file);
  t.match(ok, { ok: true, target: { server: new URL('https://x/p'), ca: { file: join(dir, 'ca.crt') }, tlsServerName: 'api', token: 't' } });
  t.notOk(ok.ok && 'tokenFile' in ok.target, 'token wins over tokenFile, as in client-go');
});

t.test('an answer larger than 1 MiB is refused', async (t) => {
  const { hook, auth } = await setup(t, () => ({ body: 'x'.repeat(2 << 20) }));
  t.same(await auth.authenticateToken('big'), { kind: 'rejected', reason: 'token_review_unavailable' });
  t.equal(hook.tokens.length, 1);
});
