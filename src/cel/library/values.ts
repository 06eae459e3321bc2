/**
 * CEL values as cel-js holds them, compared as cel-go compares them: the
 * helpers the libraries share (equality for indexOf, distinct and sets;
 * ordering for sort, min, max and isSorted).
 */
import { Optional } from '@marcbachmann/cel-js';

/** A CEL list as the library hands it to a function. */
export type List = readonly unknown[];

/** The CEL type name of a run-time value, as cel-go's errors name it. */
export function typeOf(value: unknown): string {
  switch (typeof value) {
    case 'bigint':
      return 'int';
    case 'number':
      return 'double';
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
  }
  if (value === null || value === undefined) return 'null_type';
  if (Array.isArray(value)) return 'list';
  if (value instanceof Uint8Array) return 'bytes';
  if (value instanceof Date) return 'google.protobuf.Timestamp';
  if (value instanceof Optional) return 'optional_type';
  const name = (value).constructor?.name;
  if (name === 'UnsignedInt') return 'uint';
  if (name === 'Duration') return 'google.protobuf.Duration';
  if (value instanceof Map || name === 'Object' || name === undefined) return 'map';
  return name;
}

const isNumber = (v: unknown) => typeof v === 'bigint' || typeof v === 'number' || typeOf(v) === 'uint';
/** A number of any CEL kind as a JS number or bigint (uint unwrapped). */
const numeric = (v: unknown): number | bigint => (typeof v === 'bigint' || typeof v === 'number' ? v : (v as { valueOf(): bigint }).valueOf());

/** CEL's `==`: numbers across int, uint and double; lists and maps by value; different types are unequal. */
export function celEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (isNumber(a) && isNumber(b)) return numeric(a) == numeric(b);
  const type = typeOf(a);
  if (type !== typeOf(b)) return false;
  switch (type) {
    case 'list': {
      const [x, y] = [a as List, b as List];
      return x.length === y.length && x.every((v, i) => celEqual(v, y[i]));
    }
    case 'map': {
      const [x, y] = [entries(a), entries(b)];
      if (x.length !== y.length) return false;
      const other = new Map(y);
      return x.every(([k, v]) => other.has(k) && celEqual(v, other.get(k)));
    }
    case 'bytes': {
      const [x, y] = [a as Uint8Array, b as Uint8Array];
      return x.length === y.length && x.every((v, i) => v === y[i]);
    }
    case 'google.protobuf.Timestamp':
      return (a as Date).getTime() === (b as Date).getTime();
    case 'google.protobuf.Duration':
      return String(a) === String(b);
    default:
      return typeof (a as { equals?: unknown }).equals === 'function' ? (a as { equals(o: unknown): boolean }).equals(b) : false;
  }
}

function entries(map: unknown): Array<[unknown, unknown]> {
  return map instanceof Map ? [...(map as Map<unknown, unknown>)] : Object.entries(map as object);
}

/**
 * cel-go's Compare for comparable values: -1, 0 or 1. Numbers compare across
 * int, uint and double; other kinds only with their own kind.
 *
 * @throws when the two cannot be compared (cel-go's "no such overload").
 */
export function celCompare(a: unknown, b: unknown): number {
  if (isNumber(a) && isNumber(b)) {
    const [x, y] = [numeric(a), numeric(b)];
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const type = typeOf(a);
  if (type !== typeOf(b)) throw new Error(`no such overload: ${type}.compare(${typeOf(b)})`);
  switch (type) {
    case 'string':
    case 'bool':
      return a! < b! ? -1 : a! > b! ? 1 : 0;
    case 'bytes': {
      const [x, y] = [a as Uint8Array, b as Uint8Array];
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
      return Math.sign(x.length - y.length);
    }
    case 'google.protobuf.Timestamp':
      return Math.sign((a as Date).getTime() - (b as Date).getTime());
    case 'google.protobuf.Duration': {
      const [x, y] = [a as { seconds: bigint; nanos: number }, b as { seconds: bigint; nanos: number }];
      return x.seconds !== y.seconds ? (x.seconds < y.seconds ? -1 : 1) : Math.sign(x.nanos - y.nanos);
    }
    default:
      if (typeof (a as { compare?: unknown }).compare === 'function') return (a as { compare(o: unknown): number }).compare(b);
      throw new Error(`no such overload: ${type}.compare(${type})`);
  }
}

/** The types cel-go can order (ext/lists.go comparableTypes). */
export const COMPARABLE_TYPES: ReadonlySet<string> = new Set(['int', 'uint', 'double', 'bool', 'string', 'bytes', 'google.protobuf.Timestamp', 'google.protobuf.Duration']);

/** Whether a value's type is one of {@link COMPARABLE_TYPES}. */
export function isComparable(value: unknown): boolean {
  return COMPARABLE_TYPES.has(typeOf(value));
}

/** cel-go's Compare as kube's lists library reads it: 0 when the two cannot be compared (an error value is neither -1 nor 1). */
export function orderOf(a: unknown, b: unknown): number {
  if (!isComparable(a)) throw new Error(`no such overload: ${typeOf(a)} is not comparable`);
  try {
    return celCompare(a, b);
  } catch {
    return 0;
  }
}
