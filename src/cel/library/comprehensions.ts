/**
 * cel-go's two-variable comprehensions (ext.TwoVarComprehensions, ext/comprehensions.go;
 * kube since 1.32) and the lists extension's `sortBy` macro, as cel-js macros:
 * each is checked with its variables' types and evaluated over (index, value)
 * of a list or (key, value) of a map.
 *
 *   all(i, v, p) / exists(i, v, p) / existsOne(i, v, p) (also exists_one)
 *   transformList(i, v, [filter,] expr) / transformMap(k, v, [filter,] expr)
 *   transformMapEntry(k, v, [filter,] {key: value})
 */
import type { Environment } from '@marcbachmann/cel-js';
import { celEqual, COMPARABLE_TYPES as COMPARABLE, typeOf } from './values.js';
import { sortByKeys } from './lists.js';
import type { CelType, Checker, Evaluator, Context, Node, MacroInput } from './macro-api.js';

type Kind = 'all' | 'exists' | 'existsOne' | 'transformList' | 'transformMap' | 'transformMapEntry';

interface TwoVar {
  kind: Kind;
  receiver: Node;
  names: [string, string];
  filter?: Node;
  body: Node;
  /** Set by typeCheck: the context with both variables (outer holds the first). */
  outer?: Context;
  inner?: Context;
  typeCheck(chk: Checker, m: TwoVar, ctx: Context): CelType;
  evaluate(ev: Evaluator, m: TwoVar, ctx: Context): unknown;
}

function identifier(node: Node, description: string): string {
  if (node.op === 'id' && typeof node.args === 'string') return node.args;
  throw new Error(`${description}: argument must be a simple name`);
}

function twoVar(kind: Kind, withFilter: boolean) {
  return ({ args, receiver, methodName }: MacroInput): TwoVar => {
    const first = identifier(args[0], methodName);
    const second = identifier(args[1], methodName);
    if (first === second) throw new Error(`${methodName}: duplicate variable name: ${first}`);
    return {
      kind,
      receiver,
      names: [first, second],
      ...(withFilter ? { filter: args[2] } : {}),
      body: args[withFilter ? 3 : 2],
      typeCheck,
      evaluate,
    };
  };
}

function typeCheck(chk: Checker, m: TwoVar, ctx: Context): CelType {
  const range = chk.check(m.receiver, ctx);
  let types: [CelType, CelType];
  if (range.kind === 'list') types = [chk.getType('int'), range.valueType];
  else if (range.kind === 'map') types = [range.keyType, range.valueType];
  // kube refuses a two-variable comprehension over a value of unknown type (a claim): cel-go's checker needs the range's type.
  else throw chk.createError('invalid_comprehension_range', `expression of type '${range.kind === 'dyn' ? 'any' : range.kind}' cannot be range of a comprehension (must be list, map, or dynamic)`, m.receiver);
  m.outer = ctx.forkWithVariable(m.names[0], types[0]);
  m.inner = m.outer.forkWithVariable(m.names[1], types[1]);
  const bool = (node: Node) => {
    const type = chk.check(node, m.inner!);
    if (!type.isDynOrBool()) throw chk.createError('invalid_macro_argument', `${m.kind} predicate must return bool`, node);
  };
  if (m.filter) bool(m.filter);
  switch (m.kind) {
    case 'all':
    case 'exists':
    case 'existsOne':
      bool(m.body);
      return chk.getType('bool');
    case 'transformList':
      return chk.registry.getListType(chk.check(m.body, m.inner));
    case 'transformMap':
      return chk.registry.getMapType(range.kind === 'list' ? types[0] : range.keyType, chk.check(m.body, m.inner));
    case 'transformMapEntry': {
      const entry = chk.check(m.body, m.inner);
      if (entry.kind !== 'map' && entry.kind !== 'dyn') throw chk.createError('invalid_macro_argument', 'transformMapEntry expects the transform to be a map', m.body);
      return entry.kind === 'map' ? entry : chk.registry.getMapType(chk.getType('dyn'), chk.getType('dyn'));
    }
  }
}

/** The (index, value) or (key, value) pairs of a list or map, as cel-go iterates them. */
function pairs(range: unknown): Array<[unknown, unknown]> {
  if (Array.isArray(range)) return range.map((v, i) => [BigInt(i), v]);
  if (range instanceof Map) return [...(range as Map<unknown, unknown>)];
  if (typeOf(range) === 'map') return Object.entries(range as object);
  throw new Error(`expression of type '${typeOf(range)}' cannot be range of a comprehension (must be list, map, or dynamic)`);
}

function evaluate(ev: Evaluator, m: TwoVar, ctx: Context): unknown {
  const items = pairs(ev.run(m.receiver, ctx));
  const inner = m.inner!;
  m.outer!.reuse(ctx);
  const run = (node: Node, [k, v]: [unknown, unknown]) => {
    m.outer!.setIterValue(k, ev);
    inner.setIterValue(v, ev);
    return ev.run(node, inner);
  };
  const test = (node: Node, pair: [unknown, unknown]) => {
    const value = run(node, pair);
    if (typeof value !== 'boolean') throw new Error(`no such overload: ${m.kind} predicate returned ${typeOf(value)}`);
    return value;
  };
  switch (m.kind) {
    case 'all':
    case 'exists': {
      // Logical AND / OR: an error counts only if no element decides the answer.
      const decisive = m.kind === 'exists';
      let error: Error | undefined;
      for (const pair of items) {
        try {
          if (test(m.body, pair) === decisive) return decisive;
        } catch (err) {
          error ??= err instanceof Error ? err : new Error(String(err));
        }
      }
      if (error) throw error;
      return !decisive;
    }
    case 'existsOne':
      return items.filter((pair) => test(m.body, pair)).length === 1;
    case 'transformList':
      return items.filter((pair) => !m.filter || test(m.filter, pair)).map((pair) => run(m.body, pair));
    case 'transformMap': {
      const out = new Map<unknown, unknown>();
      for (const pair of items) if (!m.filter || test(m.filter, pair)) out.set(pair[0], run(m.body, pair));
      return fromMap(out);
    }
    case 'transformMapEntry': {
      const out = new Map<unknown, unknown>();
      for (const pair of items) {
        if (m.filter && !test(m.filter, pair)) continue;
        for (const [k, v] of pairs(run(m.body, pair))) {
          if ([...out.keys()].some((key) => celEqual(key, k))) throw new Error(`insert failed: key ${String(k)} already exists`);
          out.set(k, v);
        }
      }
      return fromMap(out);
    }
  }
}

/** A map with string keys as cel-js makes map literals (a plain object), else a Map. */
function fromMap(map: Map<unknown, unknown>): unknown {
  if ([...map.keys()].every((k) => typeof k === 'string')) return Object.fromEntries(map as Map<string, unknown>);
  return map;
}

/** `list.sortBy(e, key)`: the list ordered by each element's key (ext/lists.go sortByMacro). */
function sortBy({ args, receiver }: MacroInput) {
  const name = identifier(args[0], 'sortBy');
  if (receiver.op === 'map' || receiver.op === 'value') throw new Error('sortBy can only be applied to a list, identifier, comprehension, call or select expression');
  let element: Context | undefined;
  return {
    typeCheck(chk: Checker, _m: unknown, ctx: Context): CelType {
      const range = chk.check(receiver, ctx);
      // As kube: sortBy over a value of unknown type (a claim) is refused at compile time.
      if (range.kind !== 'list') throw chk.createError('invalid_comprehension_range', `expression of type '${range.kind === 'dyn' ? 'any' : range.kind}' cannot be range of a comprehension (must be list, map, or dynamic)`, receiver);
      element = ctx.forkWithVariable(name, range.valueType);
      const key = chk.check(args[1], element);
      if (key.kind !== 'dyn' && !COMPARABLE.has(key.name)) throw chk.createError('no_matching_overload', `found no matching overload for '@sortByAssociatedKeys' applied to a key of type '${key.name}'`, args[1]);
      return range;
    },
    evaluate(ev: Evaluator, _m: unknown, ctx: Context): unknown {
      const list = ev.run(receiver, ctx);
      if (!Array.isArray(list)) throw new Error(`no such overload: ${typeOf(list)}.sortBy`);
      element!.reuse(ctx);
      const keys = list.map((v) => ev.run(args[1], element!.setIterValue(v, ev)));
      return sortByKeys(list, keys);
    },
  };
}

export function registerComprehensions(env: Environment): void {
  const macro = (signature: string, handler: (input: MacroInput) => unknown) => env.registerFunction(signature, handler as never);
  // cel-js finds a macro by name, receiver and argument count, whatever the receiver's type: `list.` covers maps too.
  macro('list.all(ast, ast, ast): bool', twoVar('all', false));
  macro('list.exists(ast, ast, ast): bool', twoVar('exists', false));
  macro('list.existsOne(ast, ast, ast): bool', twoVar('existsOne', false));
  macro('list.exists_one(ast, ast, ast): bool', twoVar('existsOne', false));
  for (const kind of ['transformList', 'transformMap', 'transformMapEntry'] as const) {
    const result = kind === 'transformList' ? 'list<dyn>' : 'map<dyn, dyn>';
    macro(`list.${kind}(ast, ast, ast): ${result}`, twoVar(kind, false));
    macro(`list.${kind}(ast, ast, ast, ast): ${result}`, twoVar(kind, true));
  }
  macro('list.sortBy(ast, ast): list<dyn>', sortBy);
}
