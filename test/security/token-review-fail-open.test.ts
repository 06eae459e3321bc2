// Attack class: a token webhook that fails open.
//
// When the webhook is slow, down, broken or says "no" in an unusual way, a proxy that
// treats "no clear refusal" as success (or caches an error as a success, or forgets a
// refusal) lets an attacker's token through. kube fails closed: an error is a refusal
// and not cached; a "no" is remembered for the cache TTL. Each case sends the attacker's
// token through the proxy and checks that nothing reached the upstream, and that the
// token appears in neither the proxy's log nor its audit line.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import t from 'tap';
import { startStack } from '../helpers/stack.js';
import { review, startTokenWebhook, type WebhookReply } from '../helpers/token-webhook.js';

const dir = mkdtempSync(join(tmpdir(), 'kfp-webhook-attack-'));
const auditFile = join(dir, 'audit.log');
const logLines: string[] = [];
const attacker = (n: string) => `attacker-secret-${n}`;
const mallory = review({ authenticated: true, user: { username: 'mallory', groups: ['system:masters'] } });

let reply: (token: string) => WebhookReply = () => 'hang';
const hook = await startTokenWebhook((token) => reply(token));
t.teardown(() => hook.close());
const stack = await startStack(t, {
  logger: pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) }),
  configure: (c) => ({
    ...c,
    authentication: { ...c.authentication, webhook: { configFile: hook.kubeconfig(dir), cacheTTL: '1m', timeout: '1s' } },
    audit: { path: auditFile, format: 'json' },
  }),
});

async function send(token: string) {
  const before = stack.upstream.seen.length;
  const res = await stack.fetch('/api/v1/namespaces', { headers: { authorization: `Bearer ${token}` } });
  const body = await res.body.text();
  return { status: res.statusCode, body, reachedUpstream: stack.upstream.seen.length > before };
}

const cases: [string, WebhookReply][] = [
  ['times out', 'hang'],
  ['answers 500', { status: 500, body: { kind: 'Status', code: 500 } }],
  ['answers 401 with an authenticated review', { status: 401, body: mallory }],
  ['answers authenticated:false with a user', { body: review({ authenticated: false, user: { username: 'mallory', groups: ['system:masters'] } }) }],
  ['answers authenticated:"true" (a string)', { body: review({ authenticated: 'true', user: { username: 'mallory' } }) }],
  ['answers garbage', { body: '<html>ok</html>' }],
  ['answers another kind', { body: { apiVersion: 'v1', kind: 'Status', status: { authenticated: true, user: { username: 'mallory' } } } }],
  ['cuts the connection', 'destroy'],
];

for (const [name, answer] of cases) {
  t.test(`a webhook that ${name} lets nothing through`, async (t) => {
    reply = () => answer;
    const res = await send(attacker(name.replace(/\W+/g, '-')));
    t.equal(res.status, 401, res.body);
    t.notOk(res.reachedUpstream);
    t.match(res.body, /"kind":"Status"/);
  });
}

t.test('a token cached as denied stays denied when the webhook changes its mind', async (t) => {
  reply = () => ({ body: review({ authenticated: false }) });
  t.equal((await send(attacker('denied'))).status, 401);
  reply = () => ({ body: mallory });
  const again = await send(attacker('denied'));
  t.equal(again.status, 401, 'the cached refusal decides');
  t.notOk(again.reachedUpstream);
});

t.test('an error is not cached as success either: after a failure a good answer is asked for again', async (t) => {
  reply = () => ({ status: 500, body: {} });
  t.equal((await send(attacker('flaky'))).status, 401);
  reply = () => ({ body: review({ authenticated: true, user: { username: 'alice' } }) });
  const ok = await send(attacker('flaky'));
  t.ok(ok.reachedUpstream, ok.body);
  t.equal(stack.upstream.seen.at(-1)?.user?.username, 'alice');
});

t.test('no token in the log or the audit line; the audit line names the webhook and the reason', async (t) => {
  let audit = '';
  for (let i = 0; i < 40 && !audit.includes('alice'); i++) {
    await sleep(100);
    try {
      audit = readFileSync(auditFile, 'utf8');
    } catch {
      /* not written yet */
    }
  }
  t.match(audit, /"authMethod":"webhook"/);
  t.match(audit, /token_review_unavailable/);
  t.match(audit, /token_review_denied/);
  t.notMatch(audit, /attacker-secret/);
  t.notMatch(logLines.join(''), /attacker-secret/);
  t.match(logLines.join(''), /token review unavailable/);
});
