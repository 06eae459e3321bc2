// kube's CEL for authentication (src/cel): compile once, kube's output-type
// rule, positions in compile errors, cost refused at load, run-time errors as values.
import t from 'tap';
import { compileExpression, isNativeStringList, selectsClaim } from '../../src/cel/compile.js';

const run = (expression: string, claims: Record<string, unknown>) => {
  const compiled = compileExpression('claims', expression, 'any');
  if (!compiled.ok) throw new Error(compiled.error);
  return compiled.program.evaluate(claims);
};

t.test('mappings of every documented form evaluate over claims', async (t) => {
  const claims = { sub: 'alice', email: 'a@x.io', email_verified: true, roles: 'x,y', groups: ['a', 'b'], exp: 1700000000, nbf: 1699990000 };
  t.same(run("'oidc:' + claims.sub", claims), { ok: true, value: 'oidc:alice' });
  t.same(run("claims.roles.split(',')", claims), { ok: true, value: ['x', 'y'] });
  t.same(run("claims.groups.map(g, 'p:' + g)", claims), { ok: true, value: ['p:a', 'p:b'] });
  t.same(run("has(claims.email) ? claims.email : ''", claims), { ok: true, value: 'a@x.io' });
  t.same(run('claims.?email_verified.orValue(true) == true', claims), { ok: true, value: true });
  // JSON numbers are doubles in kube (json.Unmarshal into any gives float64).
  t.same(run('type(claims.exp) == double', claims), { ok: true, value: true });
  t.same(run('claims.exp - claims.nbf <= 86400', claims), { ok: true, value: true });
  t.same(run("claims.sub.replace('a', 'A')", claims), { ok: true, value: 'Alice' });
  t.same(run("'abc'.charAt(1)", claims), { ok: true, value: 'b' });
});

t.test('a run-time failure is a value, never a throw', async (t) => {
  const missing = run('claims.missing', {});
  t.equal(missing.ok, false);
  const overload = run('claims.exp - 1', { exp: 5 });
  t.equal(overload.ok, false, 'double minus int has no overload, in kube too');
});

t.test('compile errors carry kube\'s wording and the position', async (t) => {
  const syntax = compileExpression('claims', 'claims.email +', 'any');
  t.notOk(syntax.ok);
  if (!syntax.ok) t.match(syntax.error, /^compilation failed: .* at line 1, column 15$/);
  const unknown = compileExpression('claims', 'claimz.x', 'any');
  if (!unknown.ok) t.match(unknown.error, /compilation failed: .*claimz.* at line 1, column 1/);
  else t.fail('claimz compiled');
  // compile.go: a validation rule's output type must be bool; dyn is not.
  t.same(compileExpression('claims', 'claims.admin', 'bool'), { ok: false, error: 'must evaluate to bool' });
  t.ok(compileExpression('claims', 'claims.admin == true', 'bool').ok);
  const userField = compileExpression('user', 'user.nickname', 'any');
  t.notOk(userField.ok, 'kubernetes.UserInfo has no such field');
});

t.test('an expression too expensive for kube\'s per-call limit is refused at load', async (t) => {
  const nested = compileExpression('claims', 'claims.a.exists(x, claims.b.exists(y, x == y))', 'bool');
  t.notOk(nested.ok);
  if (!nested.ok) t.match(nested.error, /too expensive.*1000000/);
  t.ok(compileExpression('claims', "claims.groups.exists(g, ['a', 'b'].exists(x, x == g))", 'bool').ok, 'a literal list is small');
});

t.test('compiled once: the same program comes back', async (t) => {
  const a = compileExpression('claims', 'claims.sub', 'any');
  const b = compileExpression('claims', 'claims.sub', 'any');
  t.equal(a, b);
});

t.test('user expressions see kube\'s UserInfo', async (t) => {
  const rule = compileExpression('user', "!user.username.startsWith('system:') && user.groups.all(g, g != 'x') && user.extra['k'][0] == 'v' && user.uid == ''", 'bool');
  if (!rule.ok) throw new Error(rule.error);
  t.same(rule.program.evaluate({ username: 'bob', uid: '', groups: ['a'], extra: { k: ['v'] } }), { ok: true, value: true });
  t.same(rule.program.evaluate({ username: 'system:bob', uid: '', groups: [], extra: { k: ['v'] } }), { ok: true, value: false });
});

t.test('selectsClaim: claims.x and claims.?x, not claims["x"] (validation.go hasSelectExp)', async (t) => {
  const of = (e: string) => {
    const c = compileExpression('claims', e, 'any');
    if (!c.ok) throw new Error(c.error);
    return selectsClaim(c.program, 'email_verified');
  };
  t.ok(of('claims.email_verified'));
  t.ok(of('claims.?email_verified.orValue(true)'));
  t.ok(of('has(claims.email_verified) ? claims.email : ""'));
  t.notOk(of("claims['email_verified']"));
  t.notOk(of('claims.email'));
});

t.test("kube's documented rules stay within the bound (a string function scans the token once, not once per element)", async (t) => {
  t.ok(compileExpression('user', "user.groups.all(g, !g.startsWith('system:'))", 'bool').ok);
  t.ok(compileExpression('claims', "claims.?groups.orValue([]).map(g, 'oidc:' + g.lowerAscii())", 'any').ok);
  t.notOk(compileExpression('claims', 'claims.a.exists(x, x in claims.b)', 'bool').ok, 'a membership test over a claim inside a comprehension over another');
});

t.test("upperAscii and lowerAscii change ASCII letters only, as cel-go's ext/strings.go", async (t) => {
  t.same(run('claims.n.upperAscii()', { n: 'ñandú Zoë' }), { ok: true, value: 'ñANDú ZOë' });
  t.same(run('claims.n.lowerAscii()', { n: 'ÑANDÚ ZOË' }), { ok: true, value: 'ÑandÚ zoË' });
  t.same(run("'ñandú'.upperAscii()", {}), { ok: true, value: 'ñANDú' });
  t.equal(run('claims.n.upperAscii()', { n: 7 }).ok, false, 'a non-string still has no overload');
});

t.test("split's list is marked as cel-go's native []string; a list made from it is not", async (t) => {
  const value = (expression: string) => {
    const result = run(expression, { s: 'a b' });
    return result.ok ? result.value : result.error;
  };
  t.ok(isNativeStringList(value("claims.s.split(' ')")));
  t.ok(isNativeStringList(value("true ? claims.s.split(' ') : []")));
  t.notOk(isNativeStringList(value("claims.s.split(' ').map(x, x)")));
  t.notOk(isNativeStringList(value("['a', 'b']")));
});
