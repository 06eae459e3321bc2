// Attack class: a regular expression that backtracks, fed a claim the user chose (ReDoS).
//
// cel-go's matches() is RE2: linear in the input, whatever the pattern. An admin may
// write claimValidationRules, userValidationRules or claim mappings with patterns that
// are safe under RE2 but exponential under a backtracking engine, e.g. `^(a+)+$` or
// `^([a-z]+)*[.]corp$`. Many claims are the user's own choosing (name, email,
// preferred_username); one such token, verified on the event loop, would stall every
// request of the proxy. The attacker helper measured 17.6 s for 28 characters with the
// CEL library's own JavaScript RegExp. Here the hostile claim is 64 characters long: a
// backtracking engine would not finish within the file's timeout (2^64 steps), so a
// regression fails by timing out; RE2 answers in microseconds. No wall-clock assertion.
import t from 'tap';
import { compileExpression } from '../../src/cel/compile.js';

const hostile = `${'a'.repeat(64)}!`;

for (const expression of ["claims.name.matches('^(a+)+$')", "claims.name.matches('^(a|a)+$')", "claims.name.matches('^([a-z]+)*[.]corp$')"]) {
  t.test(`${expression} answers on a hostile claim`, async (t) => {
    const compiled = compileExpression('claims', expression, 'bool');
    if (!compiled.ok) {
      t.fail(compiled.error);
      return;
    }
    t.same(compiled.program.evaluate({ name: hostile }), { ok: true, value: false });
    t.same(compiled.program.evaluate({ name: 'aaaa' }), { ok: true, value: !expression.includes('corp') }, 'and still matches what it should');
  });
}

t.test('RE2 syntax: a pattern RE2 refuses (a backreference, lookahead) never matches', async (t) => {
  for (const pattern of ['(a)\\\\1', 'a(?=b)']) {
    const compiled = compileExpression('claims', `claims.name.matches('${pattern}')`, 'bool');
    const result = compiled.ok ? compiled.program.evaluate({ name: 'aab' }) : { ok: false };
    t.equal(result.ok, false, `${pattern}: a compile or evaluation error, as kube-apiserver refuses it`);
  }
});

t.test('RE2 semantics: matches() finds a match anywhere, as cel-go does', async (t) => {
  const compiled = compileExpression('claims', "claims.email.matches('@example[.]com$')", 'bool');
  if (!compiled.ok) {
    t.fail(compiled.error);
    return;
  }
  t.same(compiled.program.evaluate({ email: 'a@example.com' }), { ok: true, value: true });
  t.same(compiled.program.evaluate({ email: 'a@example.com.evil' }), { ok: true, value: false });
});
