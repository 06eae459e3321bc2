/**
 * kube's list functions: cel-go's lists extension (ext.Lists(v3): slice,
 * flatten, sort, sortBy, distinct, reverse, lists.range; cel-go ext/lists.go)
 * and kube's own lists library (pkg/cel/library/lists.go, version 1:
 * isSorted, sum, min, max, indexOf, lastIndexOf, includes). Errors carry
 * cel-go's wording.
 */
import { Optional, type Environment } from '@marcbachmann/cel-js';
import { Duration, UnsignedInt } from '@marcbachmann/cel-js/evaluator';
import { ListsNamespace } from './namespaces.js';
import { celCompare, celEqual, isComparable, orderOf, typeOf, type List } from './values.js';

/** cel-go's default bound on lists.range (ext/lists.go defaultMaxRangeSize). */
const MAX_RANGE = 1_000_000n;

/**
 * Registered over `list` (list<dyn>): cel-js matches a typed list to list<dyn>
 * and dispatches a claim's list at run time by its elements, so the typed
 * overloads kube declares (sort on comparable types, indexOf(A)…) are
 * enforced on statically typed receivers by ./static-checks.ts instead.
 */
export function registerLists(env: Environment): void {
  env.registerFunction('list.slice(int, int): list', slice);
  env.registerFunction('list.flatten(): list', (l: List) => flatten(l, 1n));
  env.registerFunction('list.flatten(int): list', flatten);
  env.registerFunction('list.sort(): list', (l: List) => sortByKeys(l, l));
  env.registerFunction('list.distinct(): list', distinct);
  env.registerFunction('list.reverse(): list', (l: List) => [...l].reverse());
  env.registerType('ListsNamespace', ListsNamespace);
  env.registerConstant('lists', 'ListsNamespace', new ListsNamespace());
  env.registerFunction('ListsNamespace.range(int): list<int>', (_: ListsNamespace, n: bigint) => range(n));

  env.registerFunction('list.isSorted(): bool', isSorted);
  env.registerFunction('list<A>.sum(): A', sum);
  env.registerFunction('list<A>.min(): A', (l: List) => extreme(l, 'min'));
  env.registerFunction('list<A>.max(): A', (l: List) => extreme(l, 'max'));
  env.registerFunction('list.indexOf(dyn): int', (l: List, v: unknown) => BigInt(l.findIndex((x) => celEqual(x, v))));
  env.registerFunction('list.lastIndexOf(dyn): int', (l: List, v: unknown) => BigInt(l.findLastIndex((x) => celEqual(x, v))));
  env.registerFunction('dyn.includes(dyn): bool', (target: unknown, v: unknown) => (Array.isArray(target) ? target.some((x) => celEqual(x, v)) : celEqual(target, v)));
  env.registerFunction('list<A>.first(): optional<A>', (l: List) => (l.length ? Optional.of(l[0]) : Optional.none()));
  env.registerFunction('list<A>.last(): optional<A>', (l: List) => (l.length ? Optional.of(l.at(-1)) : Optional.none()));
}

function slice(l: List, start: bigint, end: bigint): List {
  if (start < 0n || end < 0n) throw new Error(`cannot slice(${start}, ${end}), negative indexes not supported`);
  if (start > end) throw new Error(`cannot slice(${start}, ${end}), start index must be less than or equal to end index`);
  if (BigInt(l.length) < end) throw new Error(`cannot slice(${start}, ${end}), list is length ${l.length}`);
  return l.slice(Number(start), Number(end));
}

function flatten(l: List, depth: bigint): List {
  if (depth < 0n) throw new Error('level must be non-negative');
  return l.flatMap((v) => (Array.isArray(v) && depth > 0n ? flatten(v, depth - 1n) : [v]));
}

/** ext/lists.go sortListByAssociatedKeys: the list ordered by its keys, which must be comparable and of one type. */
export function sortByKeys(l: List, keys: List): List {
  if (l.length !== keys.length) {
    throw new Error(`@sortByAssociatedKeys() expected a list of the same size as the associated keys list, but got ${l.length} and ${keys.length} elements respectively`);
  }
  if (l.length === 0) return l;
  if (!isComparable(keys[0])) throw new Error('list elements must be comparable');
  const type = typeOf(keys[0]);
  if (keys.some((k) => typeOf(k) !== type)) throw new Error('list elements must have the same type');
  const order = keys.map((_, i) => i).sort((i, j) => celCompare(keys[i], keys[j]));
  return order.map((i) => l[i]);
}

function distinct(l: List): List {
  const out: unknown[] = [];
  for (const v of l) if (!out.some((x) => celEqual(x, v))) out.push(v);
  return out;
}

function range(n: bigint): bigint[] {
  if (n < 0n) throw new Error(`lists.range: size must be non-negative, got ${n}`);
  if (n > MAX_RANGE) throw new Error(`lists.range: size ${n} exceeds maximum allowed (${MAX_RANGE})`);
  return Array.from({ length: Number(n) }, (_, i) => BigInt(i));
}

/** kube's isSorted: a pair that cannot be compared (a string after a number) does not count as out of order. */
function isSorted(l: List): boolean {
  for (let i = 1; i < l.length; i++) if (orderOf(l[i - 1], l[i]) > 0) return false;
  return true;
}

/** kube's sum over int, uint, double or duration; an empty list is int 0; mixed kinds have no overload. */
function sum(l: List): unknown {
  if (l.length === 0) return 0n;
  const kind = typeOf(l[0]);
  if (!['int', 'uint', 'double', 'google.protobuf.Duration'].includes(kind)) throw new Error(`no such overload: sum(list) of ${kind}`);
  return l.reduce((total, v) => add(total, v));
}

const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };

function add(a: unknown, b: unknown): unknown {
  const kind = typeOf(a);
  if (kind !== typeOf(b)) throw new Error(`no such overload: sum(list) of ${kind} and ${typeOf(b)}`);
  switch (kind) {
    case 'int': {
      const r = (a as bigint) + (b as bigint);
      if (r > INT64.max || r < INT64.min) throw new Error('integer overflow');
      return r;
    }
    case 'double':
      return (a as number) + (b as number);
    case 'uint':
      return new UnsignedInt((a as UnsignedInt).valueOf() + (b as UnsignedInt).valueOf());
    case 'google.protobuf.Duration':
      return (a as Duration).addDuration(b as Duration);
    default:
      throw new Error(`no such overload: sum(list) of ${kind}`);
  }
}

/** kube's min and max: the first of the extremes; a value that cannot be compared is passed over, as cel-go's cmp. */
function extreme(l: List, op: 'min' | 'max'): unknown {
  if (l.length === 0) throw new Error(`${op} called on empty list`);
  let result = l[0];
  for (const v of l.slice(1)) {
    const c = orderOf(result, v);
    if ((op === 'min' && c > 0) || (op === 'max' && c < 0)) result = v;
  }
  return result;
}
