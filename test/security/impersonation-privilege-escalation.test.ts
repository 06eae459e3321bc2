// Attack class: borrowing the impersonating proxy's own right.
//
// In upstream.identity: impersonation the proxy's service account may impersonate
// anyone: that is how it passes each person on. An attacker who can make the proxy
// send Impersonate-* of their choosing, or send the proxy's token with their own
// request, is anyone they like, system:masters included (the class of Pinniped's
// and kube-oidc-proxy's impersonation advisories). Every case sends the attacker's
// request through the proxy to the dev upstream, which records exactly what arrived.
// The dev upstream knows neither impersonation nor SubjectAccessReview: a review it is asked for fails,
// which is the fault "kube-apiserver cannot be asked" a real one cannot produce on demand.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { startStack, type Stack } from '../helpers/stack.js';

const dir = mkdtempSync(join(tmpdir(), 'kfp-impersonation-attack-'));
const tokenFile = join(dir, 'proxy-token');
const PROXY_TOKEN = 'the-proxys-own-service-account-token';
writeFileSync(tokenFile, PROXY_TOKEN);
const logLines: string[] = [];

async function impersonatingStack(allowImpersonationHeaders: boolean, passthrough = false): Promise<Stack & { auditFile: string }> {
  const auditFile = join(dir, `audit-${allowImpersonationHeaders}-${passthrough}.log`);
  const stack = await startStack(t, {
    logger: pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) }),
    configure: (c) => ({
      ...c,
      upstream: { url: c.upstream!.url, caFile: c.upstream!.caFile, identity: 'impersonation', tokenFile },
      authentication: { ...c.authentication, allowImpersonationHeaders, passthrough },
      audit: { path: auditFile, format: 'json' },
    }),
  });
  return Object.assign(stack, { auditFile });
}

const refusing = await impersonatingStack(false);
const allowing = await impersonatingStack(true, true);

/** Sends a request with `headers` and returns what the upstream saw of it (undefined: nothing arrived). */
async function send(stack: Stack, headers: Record<string, string | string[]>) {
  const before = stack.upstream.seen.length;
  const res = await stack.fetch('/api/v1/namespaces', { headers });
  const body = await res.body.text();
  const seen = stack.upstream.seen.slice(before).filter((r) => r.url === '/api/v1/namespaces');
  return { status: res.statusCode, body, forwarded: seen[0] };
}

/** Every value of a header in what the upstream received (case-insensitive, dashes only). */
const headerValues = (raw: readonly string[], name: string) => {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) out.push(raw[i + 1]);
  return out;
};

t.test('impersonation not allowed: every spelling of Impersonate-* is a 403 and nothing is forwarded', async (t) => {
  const token = await refusing.mint({ email: 'mallory@example.com', groups: ['interns'] });
  for (const name of ['Impersonate-User', 'impersonate-group', 'IMPERSONATE-UID', 'Impersonate_User', 'Impersonate-Extra-scopes']) {
    const { status, forwarded } = await send(refusing, { authorization: `Bearer ${token}`, [name]: 'system:admin' });
    t.equal(status, 403, `${name}: refused`);
    t.equal(forwarded, undefined, `${name}: the upstream never saw it`);
  }
});

t.test("the caller's identity goes as Impersonate-*, with the proxy's token and not the caller's", async (t) => {
  const token = await refusing.mint({ email: 'mallory@example.com', groups: ['interns'] });
  const { forwarded } = await send(refusing, { authorization: `Bearer ${token}`, 'x-remote-user': 'admin', 'x-remote-group': 'system:masters' });
  t.ok(forwarded, 'forwarded (the dev upstream, which knows no impersonation, then answers 401)');
  const raw = forwarded.rawHeaders;
  t.same(headerValues(raw, 'impersonate-user'), ['mallory@example.com']);
  t.same(headerValues(raw, 'impersonate-group'), ['oidc:interns']);
  t.same(headerValues(raw, 'authorization'), [`Bearer ${PROXY_TOKEN}`], "one Authorization line: the proxy's");
  t.same(headerValues(raw, 'x-remote-user'), [], 'requestheader names the client sent are still dropped');
  t.same(headerValues(raw, 'x-remote-group'), []);
});

t.test('impersonation allowed, but kube-apiserver cannot be asked: fail closed, 403, nothing forwarded', async (t) => {
  const token = await allowing.mint({ email: 'mallory@example.com', groups: ['interns'] });
  const before = allowing.upstream.seen.length;
  const { status, body, forwarded } = await send(allowing, { authorization: `Bearer ${token}`, 'impersonate-user': 'admin', 'impersonate-group': 'system:masters' });
  t.equal(status, 403);
  t.match(JSON.parse(body), { kind: 'Status', code: 403, message: /you may not impersonate/ });
  t.equal(forwarded, undefined);
  const reviews = allowing.upstream.seen.slice(before).filter((r) => r.url.endsWith('/subjectaccessreviews'));
  t.ok(reviews.length > 0, 'a SubjectAccessReview was asked for');
  t.ok(
    reviews.every((r) => headerValues(r.rawHeaders, 'authorization').join() === `Bearer ${PROXY_TOKEN}`),
    "the review goes as the proxy; the caller's token never does",
  );
});

t.test('an underscore spelling is never honoured: the caller is passed on as themselves', async (t) => {
  const token = await allowing.mint({ email: 'mallory@example.com', groups: ['interns'] });
  const { forwarded } = await send(allowing, { authorization: `Bearer ${token}`, Impersonate_User: 'admin', Impersonate_Group: 'system:masters' });
  t.ok(forwarded, 'forwarded');
  t.same(headerValues(forwarded.rawHeaders, 'impersonate-user'), ['mallory@example.com']);
  t.same(headerValues(forwarded.rawHeaders, 'impersonate-group'), ['oidc:interns']);
  t.notOk(forwarded.rawHeaders.some((h) => h.toLowerCase().startsWith('impersonate_')), 'the underscore header is dropped');
});

t.test('a request that would cost hundreds of reviews is a 400 before any is asked', async (t) => {
  const token = await allowing.mint({ email: 'mallory@example.com', groups: ['interns'] });
  const before = allowing.upstream.seen.length;
  const groups = Array.from({ length: 200 }, (_, i) => `g${i}`);
  const { status, forwarded } = await send(allowing, { authorization: `Bearer ${token}`, 'impersonate-user': 'admin', 'impersonate-group': groups });
  t.equal(status, 400);
  t.equal(forwarded, undefined);
  t.equal(allowing.upstream.seen.slice(before).filter((r) => r.url.endsWith('/subjectaccessreviews')).length, 0, 'no review asked');
});

t.test("groups without a user: kube's 400, not the caller passed on with extra groups", async (t) => {
  const token = await allowing.mint({ email: 'mallory@example.com', groups: ['interns'] });
  const { status, forwarded } = await send(allowing, { authorization: `Bearer ${token}`, 'impersonate-group': 'system:masters' });
  t.equal(status, 400);
  t.equal(forwarded, undefined);
});

t.test("a passed-through token travels alone: never with the proxy's token, never with Impersonate-* of the proxy", async (t) => {
  const { forwarded } = await send(allowing, { authorization: 'Bearer some-service-account-token', 'impersonate-user': 'admin' });
  t.ok(forwarded, 'forwarded');
  const raw = forwarded.rawHeaders;
  t.same(headerValues(raw, 'authorization'), ['Bearer some-service-account-token'], "the client's own token, alone");
  t.same(headerValues(raw, 'impersonate-user'), ['admin'], "the client's own request, which kube-apiserver judges against the client's token");
});

t.test("the proxy's token is in no log and no audit line", async (t) => {
  const everything = logLines.join('\n') + readFileSync(refusing.auditFile, 'utf8') + readFileSync(allowing.auditFile, 'utf8');
  t.notOk(everything.includes(PROXY_TOKEN));
});
