// A client's Impersonate-* headers read as kube-apiserver's impersonation filter reads them
// (k8s.io/apiserver@v0.37.2 pkg/endpoints/filters/impersonation/impersonation.go,
// buildImpersonationRequests): which target, and which `impersonate` rights to check, in kube's order.
import t from 'tap';
import { impersonatedIdentity, readImpersonationRequest, serviceAccountOf } from '../../src/authz/impersonation-request.js';
import type { Identity } from '../../src/request/identity.js';

/** Header lines as Node hands them over: each value a latin1 string of its bytes. */
const raw = (...pairs: [string, string][]) => pairs.flatMap(([name, value]) => [name, Buffer.from(value, 'utf8').toString('latin1')]);

t.test('no Impersonate-* header: nothing asked', async (t) => {
  t.same(readImpersonationRequest([]), { kind: 'none' });
  t.same(readImpersonationRequest(raw(['Accept', 'application/json'], ['X-Impersonate-User', 'admin'])), { kind: 'none' });
  t.same(readImpersonationRequest(raw(['Impersonate_User', 'admin'])), { kind: 'none' }, 'only the dashed spelling is read (the header rules drop the others)');
});

t.test('a user, groups, an extra and a uid: the target, and one check each in kube order', async (t) => {
  const asked = readImpersonationRequest(
    raw(
      ['Impersonate-Uid', 'u-42'],
      ['Impersonate-Group', 'devs'],
      ['Impersonate-User', 'jane@example.com'],
      ['Impersonate-Extra-Scopes', 'view'],
      ['impersonate-group', 'ops'],
      ['Impersonate-Extra-scopes', 'edit'],
    ),
  );
  t.same(asked, {
    kind: 'request',
    target: { username: 'jane@example.com', groups: ['devs', 'ops'], uid: 'u-42', extra: { scopes: ['view', 'edit'] } },
    checks: [
      { group: '', resource: 'users', name: 'jane@example.com' },
      { group: '', resource: 'groups', name: 'devs' },
      { group: '', resource: 'groups', name: 'ops' },
      { group: 'authentication.k8s.io', resource: 'userextras', subresource: 'scopes', name: 'view' },
      { group: 'authentication.k8s.io', resource: 'userextras', subresource: 'scopes', name: 'edit' },
      { group: 'authentication.k8s.io', resource: 'uids', name: 'u-42' },
    ],
  });
});

t.test("the first Impersonate-User and Impersonate-Uid count (Go's Header.Get); every group does", async (t) => {
  const asked = readImpersonationRequest(
    raw(['Impersonate-User', 'first'], ['IMPERSONATE-USER', 'second'], ['Impersonate-Uid', 'u-1'], ['impersonate-uid', 'u-2'], ['Impersonate-Group', 'a'], ['Impersonate-Group', 'a']),
  );
  t.equal(asked.kind, 'request');
  if (asked.kind !== 'request') return;
  t.equal(asked.target.username, 'first');
  t.equal(asked.target.uid, 'u-1');
  t.same(asked.target.groups, ['a', 'a'], 'a repeated group is checked and sent as often as it is asked');
  t.same(
    asked.checks.map((c) => `${c.resource}:${c.name}`),
    ['users:first', 'groups:a', 'groups:a', 'uids:u-1'],
  );
});

t.test('extra keys: lower-cased, then path-unescaped; kept as written where Go cannot unescape them', async (t) => {
  const extraOf = (name: string) => {
    const asked = readImpersonationRequest(raw(['Impersonate-User', 'u'], [`Impersonate-Extra-${name}`, 'v']));
    return asked.kind === 'request' ? Object.keys(asked.target.extra) : [];
  };
  t.same(extraOf('Example.com%2FTeam'), ['example.com/team']);
  t.same(extraOf('authentication.kubernetes.io%2fcredential-id'), ['authentication.kubernetes.io/credential-id']);
  t.same(extraOf('%54eam'), ['Team'], 'lower-cased before unescaping: an upper-case letter survives as %XX (client-go encodes it so)');
  t.same(extraOf('cl%C3%A9'), ['clé'], 'percent-encoded UTF-8 bytes');
  t.same(extraOf('100%25'), ['100%']);
  t.same(extraOf('100%zz'), ['100%zz'], "url.PathUnescape fails: kube keeps the key as it is (unescapeExtraKey's fallback)");
  t.same(extraOf('50%'), ['50%'], 'a trailing % fails too');
  t.same(extraOf('a%2'), ['a%2']);
  t.same(extraOf('%41%zz'), ['%41%zz'], 'one bad escape keeps the whole key as written, good escapes included');
  t.same(extraOf('a+b'), ['a+b'], 'a plus is not a space in a path');

  const merged = readImpersonationRequest(raw(['Impersonate-User', 'u'], ['Impersonate-Extra-Example.com%2FTeam', 'blue'], ['impersonate-extra-example.com%2fteam', 'green']));
  t.same(merged.kind === 'request' && merged.target.extra, { 'example.com/team': ['blue', 'green'] }, 'spellings of one key are one key');
});

t.test('a service-account user name is checked as serviceaccounts in its namespace', async (t) => {
  const asked = readImpersonationRequest(raw(['Impersonate-User', 'system:serviceaccount:kube-system:default']));
  t.same(asked.kind === 'request' && asked.checks, [{ group: '', resource: 'serviceaccounts', namespace: 'kube-system', name: 'default' }]);
  const malformed = readImpersonationRequest(raw(['Impersonate-User', 'system:serviceaccount:Kube-System:default']));
  t.same(malformed.kind === 'request' && malformed.checks, [{ group: '', resource: 'users', name: 'system:serviceaccount:Kube-System:default' }], "not a valid namespace: kube checks it as a user");
});

t.test('serviceAccountOf is serviceaccount.SplitUsername', async (t) => {
  t.same(serviceAccountOf('system:serviceaccount:ns:sa'), { namespace: 'ns', name: 'sa' });
  t.same(serviceAccountOf('system:serviceaccount:ns:sa.with.dots'), { namespace: 'ns', name: 'sa.with.dots' }, 'a name is a DNS subdomain');
  t.same(serviceAccountOf(`system:serviceaccount:${'n'.repeat(63)}:sa`), { namespace: 'n'.repeat(63), name: 'sa' });
  for (const name of [
    'alice',
    'system:serviceaccounts:ns:sa',
    'system:serviceaccount:ns',
    'system:serviceaccount:ns:sa:extra',
    'system:serviceaccount::sa',
    'system:serviceaccount:ns:',
    'system:serviceaccount:NS:sa',
    'system:serviceaccount:ns.dot:sa',
    'system:serviceaccount:-ns:sa',
    'system:serviceaccount:ns:sa-',
    'system:serviceaccount:ns:Sa',
    `system:serviceaccount:${'n'.repeat(64)}:sa`,
    `system:serviceaccount:ns:${'s'.repeat(254)}`,
  ]) {
    t.equal(serviceAccountOf(name), undefined, name);
  }
  t.same(serviceAccountOf(`system:serviceaccount:ns:${'s'.repeat(253)}`), { namespace: 'ns', name: 's'.repeat(253) });
});

t.test('groups, a uid or extras without a user are invalid (kube: 400); an empty user alone is nothing', async (t) => {
  for (const pairs of [
    [['Impersonate-Group', 'system:masters']],
    [['Impersonate-Uid', 'u-1']],
    [['Impersonate-Extra-Scopes', 'all']],
    [['Impersonate-User', ''], ['Impersonate-Group', 'system:masters']],
    [['Impersonate-User', ''], ['Impersonate-User', 'alice'], ['Impersonate-Group', 'g']],
    [['Impersonate-Group', '']],
  ] as [string, string][][]) {
    t.match(readImpersonationRequest(raw(...pairs)), { kind: 'invalid', message: /without impersonating a user/ }, JSON.stringify(pairs));
  }
  t.same(readImpersonationRequest(raw(['Impersonate-User', ''])), { kind: 'none' }, 'Header.Get gives "": no user, nothing else asked');
  t.same(readImpersonationRequest(raw(['Impersonate-User', ''], ['Impersonate-Uid', ''])), { kind: 'none' });
  const noUid = readImpersonationRequest(raw(['Impersonate-User', 'alice'], ['Impersonate-Uid', '']));
  t.same(noUid, { kind: 'request', target: { username: 'alice', groups: [], extra: {} }, checks: [{ group: '', resource: 'users', name: 'alice' }] }, 'an empty uid is no uid');
});

t.test('values are read as the UTF-8 their bytes are', async (t) => {
  const asked = readImpersonationRequest(raw(['Impersonate-User', 'josé@example.com'], ['Impersonate-Group', 'équipe'], ['Impersonate-Extra-Team', 'ünï']));
  t.same(asked.kind === 'request' && asked.target, { username: 'josé@example.com', groups: ['équipe'], extra: { team: ['ünï'] } });
});

t.test('impersonatedIdentity: the identity as kube will rebuild it from Impersonate-* lines', async (t) => {
  const alice: Identity = { username: 'alice', uid: 'u-1', groups: ['oidc:dev'], extra: { 'example.com/team': ['blue'] }, authMethod: 'jwt' };
  t.equal(impersonatedIdentity(alice), alice, 'groups given: sent as they are');
  t.same(impersonatedIdentity({ ...alice, groups: [] }), { ...alice, groups: ['system:authenticated'] }, 'no groups: system:authenticated, as requestheader gives');
  const account = impersonatedIdentity({ username: 'system:serviceaccount:ns:sa', groups: [], extra: {}, authMethod: 'token_review' });
  t.same(account?.groups, ['system:authenticated'], "a service-account name does not get the account's groups kube would add");
  t.equal(impersonatedIdentity({ ...alice, username: 'system:anonymous' }), undefined, 'system:anonymous cannot be impersonated as authenticated');
});
