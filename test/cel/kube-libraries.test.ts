// kube's CEL libraries for authentication expressions (src/cel/library): every row of
// kube-facts.ts is kube-apiserver's own answer, and the proxy must give the same; then
// what is refused at load, by name, and the cases the facts cannot carry (uint, duration, maps).
import t from 'tap';
import { compileExpression, isNativeStringList } from '../../src/cel/compile.js';
import { formatDouble } from '../../src/cel/library/go-format.js';
import { KUBE_COST_FACTS, KUBE_FACTS } from './kube-facts.js';

/** A CEL value as kube's JSON shows it: ints as numbers, maps as objects, optionals unwrapped. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Map) return Object.fromEntries([...(value as Map<unknown, unknown>)].map(([k, v]) => [String(k), plain(v)]));
  if (typeof value === 'object' && value !== null && value.constructor === Object) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

const USER = { username: '', uid: '', groups: [], extra: {} };

function answer(variable: 'claims' | 'user', expression: string, input: Record<string, unknown>) {
  const compiled = compileExpression(variable, expression, 'any');
  if (!compiled.ok) return { compile: true as const, detail: compiled.error };
  const result = compiled.program.evaluate(variable === 'user' ? { ...USER, ...input } : input);
  if (!result.ok) return { error: true as const, detail: result.error };
  return { value: plain(result.value), ...(isNativeStringList(result.value) ? { native: true as const } : {}) };
}

t.test(`the proxy answers as kube-apiserver on ${KUBE_FACTS.length} recorded expressions`, async (t) => {
  for (const [variable, expression, input, kube] of KUBE_FACTS) {
    const { detail, ...proxy } = { detail: undefined, ...answer(variable, expression, input) };
    t.same(proxy, kube, `${expression} over ${JSON.stringify(input)}${detail ? ` (${detail})` : ''}`, { strict: true });
  }
});

t.test("what kube has and the proxy does not run (string.format) is refused at load, naming the function and where", async (t) => {
  const refused = (expression: string) => {
    const compiled = compileExpression('claims', expression, 'any');
    return compiled.ok ? 'compiled' : compiled.error;
  };
  t.match(refused("claims.q == '' || '%d'.format([claims.n])"), /'format' is part of cel-go's string.format.* column 19$/);
  t.match(refused("'%s:%s'.format([claims.iss, claims.sub])"), /^compilation failed: 'format' is part of cel-go's string.format.* at line 1, column 1$/);
});

t.test('functions cel-js has and kube does not are refused at load: kube refuses the file', async (t) => {
  for (const expression of ['b"ab".hex()', 'b"{}".json()', 'b"ab".at(0)', 'b"ab".base64()', 'b"ab".string()', 'cel.bind(x, claims.sub, x + x)']) {
    const compiled = compileExpression('claims', expression, 'any');
    t.notOk(compiled.ok, expression);
    if (!compiled.ok) t.match(compiled.error, /undeclared reference to '(hex|json|at|base64|string|bind)': kube-apiserver has no such function/);
  }
  t.notOk(compileExpression('claims', "'abc'.reverse()", 'any').ok, 'string reverse is ext.Strings v3; kube enables v2');
});

t.test('a literal pattern RE2 refuses fails at load, as cel-go validates regex literals', async (t) => {
  const matches = compileExpression('claims', "claims.sub.matches('(')", 'any');
  if (!matches.ok) t.match(matches.error, /invalid matches argument: .*missing closing \)/);
  else t.fail('compiled');
  const find = compileExpression('claims', "claims.sub.find('[')", 'any');
  t.notOk(find.ok);
  const fromClaim = compileExpression('claims', 'claims.sub.find(claims.p)', 'any');
  if (!fromClaim.ok) throw new Error(fromClaim.error);
  t.same(fromClaim.program.evaluate({ sub: 'a', p: '(' }), { ok: false, error: 'Illegal regex: error parsing regexp: missing closing ): `(`' });
});

t.test('sums and extremes of uint and duration, which kube-facts cannot carry', async (t) => {
  for (const expression of [
    '[1u, 2u].sum() == 3u',
    "[duration('1s'), duration('2m')].sum() == duration('121s')",
    '[2u, 1u].min() == 1u',
    "[timestamp('2020-01-01T00:00:00Z'), timestamp('2021-01-01T00:00:00Z')].max() == timestamp('2021-01-01T00:00:00Z')",
    "[duration('2s'), duration('1s')].sort() == [duration('1s'), duration('2s')]",
    "[b'b', b'a'].sort() == [b'a', b'b'] && [b'a', b'ab'].isSorted()",
    '[true, false].sort() == [false, true]',
    '[[1], [1]].distinct() == [[1]]',
    "[{'a': 1}, {'a': 1}].distinct().size() == 1",
    '[1, 2].first().value() == 1 && ![].first().hasValue() && [1, 2].last().value() == 2',
    "{'a': 1, 'b': 2}.transformMap(k, v, v * 2) == {'a': 2, 'b': 4}",
    "[10, 20].transformMap(i, v, v + i) == {0: 10, 1: 21}",
    "{'a': 'x'}.transformMapEntry(k, v, {v: k}) == {'x': 'a'}",
  ]) {
    t.same(answer('claims', expression, {}), { value: true }, expression);
  }
  t.match(answer('claims', '[9223372036854775807, 1].sum()', {}), { error: true, detail: /overflow/ });
});

t.test("string(double) is Go's strconv.FormatFloat(d, 'g', -1, 64)", async (t) => {
  const cases: Array<[number, string]> = [
    [1.7e9, '1.7e+09'], [123456, '123456'], [1234567, '1.234567e+06'], [0.0001, '0.0001'], [0.00001, '1e-05'], [-1.5, '-1.5'],
    [0, '0'], [-0, '-0'], [1e21, '1e+21'], [1e300, '1e+300'], [5e-324, '5e-324'], [0.1, '0.1'], [100, '100'], [2.5e-7, '2.5e-07'],
    [Infinity, '+Inf'], [-Infinity, '-Inf'], [NaN, 'NaN'], [-1234567.5, '-1.2345675e+06'], [999999, '999999'],
  ];
  for (const [d, go] of cases) t.equal(formatDouble(d), go, String(d));
  t.same(answer('claims', 'string(claims.exp)', { exp: 1700000000 }), { value: '1.7e+09' });
  t.same(answer('claims', 'string(7)', {}), { value: '7' }, 'an int is not a double');
});

t.test("split's list stays native through + [] (cel-go's list Add returns the other list), not through + [x]", async (t) => {
  t.same(answer('claims', "claims.s.split(' ') + []", { s: 'a b' }), { value: ['a', 'b'], native: true });
  t.same(answer('claims', "[] + claims.s.split(' ')", { s: 'a b' }), { value: ['a', 'b'], native: true });
  t.same(answer('claims', "claims.s.split(' ') + ['c']", { s: 'a b' }), { value: ['a', 'b', 'c'] });
  t.same(answer('claims', "claims.s.findAll('[a-z]')", { s: 'a b' }), { value: ['a', 'b'], native: true });
  t.same(answer('claims', "[1] + [2]", {}), { value: [1, 2] });
});

t.test('two-variable comprehensions: errors count as in && and ||, variables must differ, a claim is not a range', async (t) => {
  t.same(answer('claims', '[1, 2].exists(i, v, 1 / (v - 1) == 1)', {}), { value: true }, 'an error before a true element is absorbed');
  t.match(answer('claims', '[1, 2].all(i, v, 1 / (v - 1) == 1)', {}), { error: true }, 'no false element: the error stands');
  t.same(answer('claims', '[1, 2].all(i, v, 1 / (v - 1) == 5)', {}), { value: false }, 'a false element decides');
  t.match(answer('claims', '[1].all(i, i, true)', {}), { compile: true, detail: /duplicate variable name/ });
  t.match(answer('claims', 'claims.g.all(i, v, v)', { g: [true] }), { compile: true, detail: /type 'any' cannot be range/ });
  t.match(answer('claims', '[1].all(i, v, v)', {}), { compile: true, detail: /must return bool/ });
  t.match(answer('claims', '[1].transformList(1, v, v)', {}), { compile: true, detail: /simple name/ });
  t.match(answer('user', 'user.groups.transformList(i, g, g == "a", g)', { groups: ['a', 'b'] }), { value: ['a'] });
  t.match(answer('claims', "{'a': 1}.transformMapEntry(k, v, {'x': v, 'y': v})", {}), { value: { x: 1, y: 1 } });
  t.match(answer('claims', "[1, 2].transformMapEntry(i, v, {'k': v})", {}), { error: true, detail: /already exists/ });
  t.match(answer('claims', '[1, 2].transformList(i, v, i > "a", v)', {}), { compile: true });
});

t.test('sortBy: a list of comparable keys; not a claim, not a map literal', async (t) => {
  t.same(answer('user', 'user.groups.sortBy(g, g.size())', { groups: ['ccc', 'a', 'bb'] }), { value: ['a', 'bb', 'ccc'] });
  t.match(answer('claims', 'claims.g.sortBy(x, x)', { g: [2, 1] }), { compile: true });
  t.match(answer('claims', "{'a': 1}.sortBy(x, x)", {}), { compile: true });
  t.match(answer('claims', '[[2], [1]].sortBy(x, x)', {}), { compile: true, detail: /sortByAssociatedKeys/ });
  t.match(answer('claims', '[1].sortBy(2, x)', {}), { compile: true });
});

t.test("the cost bound at load counts kube's parsing functions per character, again on every iteration unless they parse the element", async (t) => {
  const tooExpensive = (e: string, variable: 'claims' | 'user' = 'claims') => {
    const compiled = compileExpression(variable, e, 'any');
    return !compiled.ok && /too expensive/.test(compiled.error);
  };
  t.notOk(tooExpensive("user.groups.exists(g, cidr('10.0.0.0/8').containsIP(g))", 'user'), 'a literal costs its own length');
  t.notOk(tooExpensive("user.groups.exists(g, isIP(g) && ip(g).isLoopback())", 'user'), 'the elements together are one token');
  t.notOk(tooExpensive('isCIDR(claims.net) && cidr(claims.net).containsIP(claims.ip)'));
  t.ok(tooExpensive('user.groups.exists(g, cidr(user.uid).containsIP(g))', 'user'), 'a whole claim parsed again for each element');
  t.ok(tooExpensive(`lists.range(100000).all(i, isIP('${'1'.repeat(100)}'))`), 'kube charges 10 a call, a million in all');
});

t.test(`where kube cancels an evaluation for its cost the proxy refuses the expression at load; where kube answers, so does the proxy (${KUBE_COST_FACTS.length} recorded)`, async (t) => {
  for (const [variable, expression, input, kube] of KUBE_COST_FACTS) {
    const proxy = answer(variable, expression, input);
    if ('error' in kube) t.ok('compile' in proxy || 'error' in proxy, `kube cancels ${expression}; the proxy: ${JSON.stringify(proxy)}`);
    else t.same(proxy, kube, expression);
  }
});

t.test('the cost bound at load covers two-variable comprehensions, sortBy and lists.range', async (t) => {
  const tooExpensive = (e: string, variable: 'claims' | 'user' = 'claims') => {
    const compiled = compileExpression(variable, e, 'any');
    return !compiled.ok && /too expensive/.test(compiled.error);
  };
  t.ok(tooExpensive('lists.range(400000).all(i, i >= 0)'), 'kube cancels it on every token (actual cost limit exceeded)');
  t.notOk(tooExpensive('lists.range(100000).all(i, i >= 0)'), 'kube runs it');
  t.ok(tooExpensive('lists.range(claims.n).all(i, i >= 0)'), 'an n from a claim may be 1,000,000');
  t.ok(tooExpensive('user.groups.all(i, g, user.groups.exists(j, h, g == h))', 'user'), 'a two-variable comprehension inside another');
  t.ok(tooExpensive("user.groups.transformList(i, g, user.groups.filter(h, h == g).size())", 'user'));
  t.ok(tooExpensive('user.groups.sortBy(g, user.groups.filter(h, h < g).size())', 'user'));
  t.notOk(tooExpensive('user.groups.transformList(i, g, g + string(i))', 'user'));
  t.ok(tooExpensive("claims.a.map(x, true, claims.b.exists(y, x == y))"), 'map with a filter counts as a comprehension');
});
