// mayImpersonate: the SubjectAccessReviews sent, exactly, and every way the answer can fail closed.
//
// The reviewer is a local server this test starts, not kube-apiserver: it records each review
// and answers allowed, denied, 500, garbage, too much, or nothing at all. Those faults are what a
// real kube-apiserver cannot be made to produce on demand; the real apiserver's allowed and denied
// answers are tested in test/kube/impersonation-upstream.test.ts.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { Pool } from 'undici';
import { readImpersonationRequest } from '../../src/authz/impersonation-request.js';
import { mayImpersonate, type ReviewTransport } from '../../src/authz/subject-access-review.js';
import type { Identity } from '../../src/request/identity.js';

interface Review {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: { apiVersion: string; kind: string; spec: Record<string, unknown> };
}

type Answer = (review: Review, res: ServerResponse) => void;

const reviews: Review[] = [];
let answer: Answer = allow;

function allow(_review: Review, res: ServerResponse) {
  res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'SubjectAccessReview', status: { allowed: true } }));
}

/** Denies the reviews whose resourceAttributes name is in `names`, with a reason; allows the rest. */
const denyNames =
  (...names: string[]): Answer =>
  (review, res) => {
    const name = (review.body.spec['resourceAttributes'] as { name: string }).name;
    if (!names.includes(name)) return allow(review, res);
    res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ status: { allowed: false, reason: `no RBAC policy matched ${name}` } }));
  };

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const review: Review = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Review['body'] };
    reviews.push(review);
    answer(review, res);
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;
const pool = new Pool(`http://127.0.0.1:${port}`);
t.teardown(async () => {
  await pool.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const transport = (timeoutMs = 2_000): ReviewTransport => ({
  pool,
  host: 'kube.example:6443',
  credentialHeaders: () => ['Authorization', 'Bearer proxy-own-token'],
  timeoutMs,
});

const alice: Identity = { username: 'alice@example.com', uid: 'u-1', groups: ['oidc:dev'], extra: { 'example.com/team': ['blue'] }, authMethod: 'jwt' };

/** The checks kube would make for these Impersonate-* lines. */
function checksFor(...pairs: [string, string][]) {
  const asked = readImpersonationRequest(pairs.flat());
  if (asked.kind !== 'request') throw new Error(`not a request: ${JSON.stringify(asked)}`);
  return asked.checks;
}

t.beforeEach(() => {
  reviews.length = 0;
  answer = allow;
});

t.test('one review per check, each naming the caller as kube knows them and the right asked', async (t) => {
  const checks = checksFor(
    ['Impersonate-User', 'system:serviceaccount:kube-system:default'],
    ['Impersonate-Group', 'ops'],
    ['Impersonate-Extra-Example.com%2FTeam', 'red'],
    ['Impersonate-Uid', 'u-9'],
  );
  t.same(await mayImpersonate(alice, checks, transport()), { allowed: true });
  t.equal(reviews.length, 4);
  const caller = { user: 'alice@example.com', groups: ['oidc:dev', 'system:authenticated'], uid: 'u-1', extra: { 'example.com/team': ['blue'] } };
  const byResource = <T extends { spec: Record<string, unknown> }>(a: T, b: T) =>
    (a.spec['resourceAttributes'] as { resource: string }).resource.localeCompare((b.spec['resourceAttributes'] as { resource: string }).resource);
  t.same(
    reviews.map((r) => r.body).sort(byResource),
    [
      { group: '', resource: 'groups', name: 'ops' },
      { group: '', resource: 'serviceaccounts', namespace: 'kube-system', name: 'default' },
      { group: 'authentication.k8s.io', resource: 'uids', name: 'u-9' },
      { group: 'authentication.k8s.io', resource: 'userextras', subresource: 'example.com/team', name: 'red' },
    ].map((attributes) => ({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      // kube's impersonation filter asks with the version of each kind: v1 for all of them.
      spec: { ...caller, resourceAttributes: { verb: 'impersonate', version: 'v1', ...attributes } },
    })),
  );
  for (const review of reviews) {
    t.equal(review.method, 'POST');
    t.equal(review.url, '/apis/authorization.k8s.io/v1/subjectaccessreviews');
    t.equal(review.headers.host, 'kube.example:6443');
    t.equal(review.headers['content-type'], 'application/json');
    t.equal(review.headers.authorization, 'Bearer proxy-own-token', "asked as the proxy, on the proxy's own credential");
  }
});

t.test("the caller's groups as kube's AuthenticatedGroupAdder leaves them", async (t) => {
  const check = checksFor(['Impersonate-User', 'bob']);
  const groupsSent = async (identity: Identity) => {
    reviews.length = 0;
    await mayImpersonate(identity, check, transport());
    return reviews[0]?.body.spec['groups'];
  };
  t.same(await groupsSent({ ...alice, groups: [] }), ['system:authenticated'], 'added to none');
  t.same(await groupsSent({ ...alice, groups: ['a', 'system:authenticated'] }), ['a', 'system:authenticated'], 'not twice');
  t.same(await groupsSent({ ...alice, groups: ['system:unauthenticated'] }), ['system:unauthenticated'], 'not beside system:unauthenticated');
  t.same(await groupsSent({ ...alice, username: 'system:anonymous', groups: [] }), [], 'not for system:anonymous');
});

t.test('no uid in the review when the caller has none', async (t) => {
  await mayImpersonate({ ...alice, uid: '' }, checksFor(['Impersonate-User', 'bob']), transport());
  await mayImpersonate({ username: 'carol', groups: ['g'], extra: {}, authMethod: 'x509' }, checksFor(['Impersonate-User', 'bob']), transport());
  t.equal(reviews.length, 2);
  for (const review of reviews) t.notOk('uid' in review.body.spec, JSON.stringify(review.body.spec));
  t.same(reviews[1]?.body.spec['extra'], {});
});

t.test('one check denied: refused, naming it and the reason', async (t) => {
  answer = denyNames('system:masters');
  const verdict = await mayImpersonate(alice, checksFor(['Impersonate-User', 'bob'], ['Impersonate-Group', 'system:masters']), transport());
  t.same(verdict, { allowed: false, reason: 'may not impersonate groups "system:masters": no RBAC policy matched system:masters' });
});

t.test('several denied: the first refusal in the client order, not the first answer to arrive', async (t) => {
  answer = (review, res) => {
    const name = (review.body.spec['resourceAttributes'] as { name: string }).name;
    // The earlier check is answered last.
    setTimeout(() => denyNames('g1', 'g2')(review, res), name === 'g1' ? 150 : 0);
  };
  const verdict = await mayImpersonate(alice, checksFor(['Impersonate-User', 'bob'], ['Impersonate-Group', 'g1'], ['Impersonate-Group', 'g2']), transport());
  t.match(verdict, { allowed: false, reason: /groups "g1"/ });
});

t.test('answers that are not an allowed SubjectAccessReview are refusals', async (t) => {
  const user = checksFor(['Impersonate-User', 'bob']);
  const cases: [string, Answer, RegExp][] = [
    ['500', (_r, res) => res.writeHead(500).end('{"status":{"allowed":true}}'), /answered HTTP 500 \(the proxy needs create on subjectaccessreviews/],
    ['403 (no auth-delegator)', (_r, res) => res.writeHead(403).end('{"kind":"Status"}'), /answered HTTP 403/],
    ['204', (_r, res) => res.writeHead(204).end(), /answered HTTP 204/],
    ['not JSON', (_r, res) => res.writeHead(201).end('<html>not json</html>'), /^SubjectAccessReview for users "bob" failed: /],
    ['JSON without a status', (_r, res) => res.writeHead(201).end('{"kind":"SubjectAccessReview"}'), /^may not impersonate users "bob"$/],
    ['allowed as a string', (_r, res) => res.writeHead(201).end('{"status":{"allowed":"true"}}'), /^may not impersonate users "bob"$/],
    ['allowed and denied', (_r, res) => res.writeHead(201).end('{"status":{"allowed":false,"denied":true,"reason":"denied by policy"}}'), /: denied by policy$/],
    ['JSON null', (_r, res) => res.writeHead(201).end('null'), /users "bob"/],
    ['too large', (_r, res) => res.writeHead(201).end(`{"status":{"allowed":true},"pad":"${'x'.repeat(1 << 20)}"}`), /failed: answer too large/],
    ['connection cut', (_r, res) => res.socket?.destroy(), /failed: /],
  ];
  for (const [name, how, reason] of cases) {
    answer = how;
    const verdict = await mayImpersonate(alice, user, transport());
    t.equal(verdict.allowed, false, name);
    t.match(verdict, { reason }, name);
  }
  answer = allow;
  t.same(await mayImpersonate(alice, user, transport()), { allowed: true }, 'and the same review allowed when the answer is');
});

t.test('a reviewer that never answers: refused once the timeout passes', async (t) => {
  answer = () => {}; // holds the request open
  const started = Date.now();
  const verdict = await mayImpersonate(alice, checksFor(['Impersonate-User', 'bob']), transport(300));
  const took = Date.now() - started;
  t.match(verdict, { allowed: false, reason: /^SubjectAccessReview for users "bob" failed: / });
  t.ok(took >= 250 && took < 2_000, `refused after the timeout (${took} ms)`);
});

t.test('a reviewer that answers a byte at a time, forever: refused once the whole review has taken too long', async (t) => {
  let drip: NodeJS.Timeout | undefined;
  answer = (_review, res) => {
    res.writeHead(201, { 'content-type': 'application/json' });
    res.write('{"status":{"allowed":true}');
    drip = setInterval(() => res.write(' '), 50); // never idle long enough for a body timeout
  };
  t.teardown(() => clearInterval(drip));
  const started = Date.now();
  const verdict = await mayImpersonate(alice, checksFor(['Impersonate-User', 'bob']), transport(400));
  const took = Date.now() - started;
  clearInterval(drip);
  t.match(verdict, { allowed: false, reason: /failed: / });
  t.ok(took >= 350 && took < 2_000, `refused after the timeout (${took} ms)`);
});

t.test('a reviewer that cannot be reached: refused', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const gone = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const nowhere = new Pool(`http://127.0.0.1:${gone}`);
  t.teardown(() => nowhere.destroy());
  const verdict = await mayImpersonate(alice, checksFor(['Impersonate-User', 'bob']), { ...transport(), pool: nowhere });
  t.match(verdict, { allowed: false, reason: /failed: .*ECONNREFUSED|failed: connect/ });
});
