/**
 * kube's quantity library (k8s.io/apiserver pkg/cel/library/quantity.go) on a
 * port of k8s.io/apimachinery's resource.Quantity: ParseQuantity with its two
 * forms (an int64 amount, or an arbitrary-precision decimal rounded up to
 * nano units), and what kube's functions read of them. The form is visible:
 * asInteger() only converts the int64 form with a non-negative scale
 * (`quantity('1000m').isInteger()` is false), an arithmetic overflow moves to
 * the decimal form, and isGreaterThan/isLessThan/compareTo convert their
 * receiver to the decimal form when the other is one (Cmp has a pointer
 * receiver). add() and sub() answer a *Quantity, which cel-go's Equal does not
 * take on the right of `==`.
 */
import type { Environment } from '@marcbachmann/cel-js';
import { KubeValue, registerKubeType } from './opaque.js';

/** resource.int64Amount: value × 10^scale, value an int64. */
interface IntAmount {
  readonly kind: 'int';
  readonly value: bigint;
  readonly scale: number;
}
/** inf.Dec: unscaled × 10^-scale. */
interface DecAmount {
  readonly kind: 'dec';
  readonly unscaled: bigint;
  readonly scale: number;
}
type Amount = IntAmount | DecAmount;

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const fitsInt64 = (n: bigint) => n >= INT64_MIN && n <= INT64_MAX;

/**
 * The largest power of ten materialized. Go's inf.Dec would compute 10^n for any n
 * (kube-apiserver spends minutes on `1234567890123456789e999999999`); past this
 * the proxy fails the evaluation instead, which refuses the token.
 */
const MAX_SHIFT = 100_000;
function pow10(n: number): bigint {
  if (n > MAX_SHIFT) throw new Error(`quantity exponent out of the range the proxy evaluates (10^${n})`);
  return 10n ** BigInt(n);
}

/** cel-go's kubernetes.Quantity; `pointer` for add()'s and sub()'s results (see the module comment). */
export class Quantity extends KubeValue {
  constructor(
    public amount: Amount,
    readonly pointer = false,
  ) {
    super();
  }
  /** resource.Quantity.Equal: the same value, whatever the form. */
  override equals(other: KubeValue): boolean {
    return other instanceof Quantity && compare(this.amount, other.amount) === 0;
  }
  /** cel-go's Quantity.Equal takes a Quantity on the right, not a *Quantity. */
  override acceptsEqual(right: KubeValue): boolean {
    return right instanceof Quantity && !right.pointer;
  }
}


/** The amount as mantissa × 10^exponent. */
const exact = (a: Amount): [bigint, number] => (a.kind === 'int' ? [a.value, a.scale] : [a.unscaled, -a.scale]);
const abs = (n: bigint) => (n < 0n ? -n : n);
const signOf = (n: bigint) => (n === 0n ? 0 : n > 0n ? 1 : -1);
const digits = (n: bigint) => (n === 0n ? 0 : abs(n).toString().length);

/** Exact comparison, without materializing 10^n for far-apart exponents. */
function compare(a: Amount, b: Amount): number {
  const [[m1, e1], [m2, e2]] = [exact(a), exact(b)];
  const [s1, s2] = [signOf(m1), signOf(m2)];
  if (s1 !== s2) return s1 < s2 ? -1 : 1;
  if (s1 === 0) return 0;
  const [d1, d2] = [digits(m1) + e1, digits(m2) + e2];
  if (d1 !== d2) return d1 > d2 ? s1 : -s1;
  const e = Math.min(e1, e2);
  const [x, y] = [abs(m1) * 10n ** BigInt(e1 - e), abs(m2) * 10n ** BigInt(e2 - e)];
  return x === y ? 0 : x > y ? s1 : -s1;
}

/** int64Amount.AsDec, or the decimal itself. */
const asDec = (a: Amount): DecAmount => (a.kind === 'dec' ? a : { kind: 'dec', unscaled: a.value, scale: -a.scale });

/** inf.Dec's Add: the sum at the larger of the two scales. */
function decAdd(x: DecAmount, y: DecAmount): DecAmount {
  const scale = Math.max(x.scale, y.scale);
  return { kind: 'dec', unscaled: x.unscaled * pow10(scale - x.scale) + y.unscaled * pow10(scale - y.scale), scale };
}

/** positiveScaleInt64: value × 10^scale if it stays an int64. */
function scaleUp(value: bigint, scale: number): bigint | undefined {
  if (value === 0n) return 0n;
  if (scale > 19) return undefined;
  const result = value * 10n ** BigInt(scale);
  return fitsInt64(result) ? result : undefined;
}

/** int64Amount.Add: exact in int64 at the smaller scale, or undefined on overflow. */
function intAdd(a: IntAmount, b: IntAmount): IntAmount | undefined {
  if (b.value === 0n) return a;
  if (a.value === 0n) return b;
  const scale = Math.min(a.scale, b.scale);
  const [x, y] = [scaleUp(a.value, a.scale - scale), scaleUp(b.value, b.scale - scale)];
  if (x === undefined || y === undefined || !fitsInt64(x + y)) return undefined;
  return { kind: 'int', value: x + y, scale };
}

/** Quantity.Add on a copy of `q`, as kube's add() does. */
function add(q: Amount, y: Amount): Amount {
  if (q.kind === 'int' && y.kind === 'int') {
    const sum = intAdd(q, y);
    if (sum) return sum;
  }
  return decAdd(asDec(q), asDec(y));
}

/** Quantity.Sub: int64Amount.Sub adds the negated value (Go's -x wraps for the smallest int64). */
function sub(q: Amount, y: Amount): Amount {
  if (q.kind === 'int' && y.kind === 'int') {
    const difference = intAdd(q, { kind: 'int', value: BigInt.asIntN(64, -y.value), scale: y.scale });
    if (difference) return difference;
  }
  const d = asDec(y);
  return decAdd(asDec(q), { kind: 'dec', unscaled: -d.unscaled, scale: d.scale });
}

/** Quantity.AsInt64: only the int64 form, at a non-negative scale, without overflow. */
function asInt64(a: Amount): bigint | undefined {
  if (a.kind === 'dec' || a.scale < 0) return undefined;
  return scaleUp(a.value, a.scale);
}

const POW10 = Array.from({ length: 32 }, (_, i) => Number(`1e${i}`));
const POW10_POS32 = [1e0, 1e32, 1e64, 1e96, 1e128, 1e160, 1e192, 1e224, 1e256, 1e288];
const POW10_NEG32 = [1e-0, 1e-32, 1e-64, 1e-96, 1e-128, 1e-160, 1e-192, 1e-224, 1e-256, 1e-288, 1e-320];

/** Go's math.Pow10, from the same tables (not always the nearest double to 10^n). */
function goPow10(n: number): number {
  if (n >= 0 && n <= 308) return POW10_POS32[n >> 5] * POW10[n & 31];
  if (n < 0 && n >= -323) return POW10_NEG32[-n >> 5] / POW10[-n & 31];
  return n > 0 ? Infinity : 0;
}

/** Quantity.AsApproximateFloat64: the mantissa as a double, times Go's Pow10 of the exponent. */
function asApproximateFloat(a: Amount): number {
  const [mantissa, exponent] = exact(a);
  const base = Number(mantissa);
  return exponent === 0 ? base : base * goPow10(exponent);
}

const FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/** parseQuantityString: sign, digits (leading zeros skipped), '.', digits, then the suffix. */
function split(str: string): { positive: boolean; value: string; num: string; denom: string; suffix: string } {
  let positive = true;
  let pos = 0;
  if (str[0] === '-' || str[0] === '+') {
    positive = str[0] === '+';
    pos++;
  }
  while (pos < str.length && str[pos] === '0') pos++;
  if (pos >= str.length) return { positive, value: '0', num: '0', denom: '', suffix: '' };
  const numStart = pos;
  while (pos < str.length && str[pos] >= '0' && str[pos] <= '9') pos++;
  const num = str.slice(numStart, pos) || '0';
  if (pos >= str.length) return { positive, value: str, num, denom: '', suffix: '' };
  let denom = '';
  if (str[pos] === '.') {
    const denomStart = ++pos;
    while (pos < str.length && str[pos] >= '0' && str[pos] <= '9') pos++;
    denom = str.slice(denomStart, pos);
    if (pos >= str.length) return { positive, value: str, num, denom, suffix: '' };
  }
  const value = str.slice(0, pos);
  const match = /^[eEinumkKMGTP]*(?:[-+]?[0-9]*)?$/.exec(str.slice(pos));
  if (!match) throw new Error(FORMAT_WRONG);
  return { positive, value, num, denom, suffix: str.slice(pos) };
}

const SUFFIXES: Record<string, [base: number, exponent: number]> = {
  '': [10, 0], n: [10, -9], u: [10, -6], m: [10, -3], k: [10, 3], M: [10, 6], G: [10, 9], T: [10, 12], P: [10, 15], E: [10, 18],
  Ki: [2, 10], Mi: [2, 20], Gi: [2, 30], Ti: [2, 40], Pi: [2, 50], Ei: [2, 60],
};

/** quantitySuffixer.interpret: a known suffix, or e/E and an int64 exponent (truncated to int32, as Go converts it). */
function interpret(suffix: string): { base: number; exponent: number; format: 'DecimalSI' | 'BinarySI' | 'DecimalExponent' } {
  const known = Object.hasOwn(SUFFIXES, suffix) ? SUFFIXES[suffix] : undefined;
  if (known) return { base: known[0], exponent: known[1], format: known[0] === 2 ? 'BinarySI' : 'DecimalSI' };
  if (suffix.length > 1 && (suffix[0] === 'e' || suffix[0] === 'E') && /^[+-]?[0-9]+$/.test(suffix.slice(1))) {
    const parsed = BigInt(suffix.slice(1));
    if (fitsInt64(parsed)) return { base: 10, exponent: Number(BigInt.asIntN(32, parsed)), format: 'DecimalExponent' };
  }
  throw new Error("unable to parse quantity's suffix");
}

/** resource.ParseQuantity. */
export function parseQuantity(str: string): Amount {
  if (str === '') throw new Error(FORMAT_WRONG);
  if (str === '0') return { kind: 'int', value: 0n, scale: 0 };
  const { positive, value, num, denom, suffix } = split(str);
  const { base, exponent, format } = interpret(suffix);

  // The int64 form, when the digits fit and the scale is no finer than nano.
  let precision: number;
  let scale = 0;
  let mantissa = 1n;
  if (format === 'BinarySI') {
    if (exponent >= 0 && denom === '') {
      mantissa = 1n << BigInt(exponent);
      precision = 15 - num.length - Math.trunc((exponent * 3) / 10) - 1;
    } else {
      precision = -1;
    }
  } else {
    scale = exponent;
    precision = 18 - (num.length + denom.length);
  }
  if (precision >= 0) {
    scale = (scale - denom.length) | 0; // int32, as Go's

    if (scale >= -9) {
      const result = BigInt(num + denom) * mantissa;
      if (fitsInt64(result)) return { kind: 'int', value: positive ? result : -result, scale };
    }
  }

  // The decimal form: inf.Dec's SetString of the number, the suffix applied, rounded up to nano units.
  const point = value.indexOf('.');
  const digitsText = value.replace(/^[+-]/, '').replace('.', '');
  if (!/[0-9]/.test(digitsText)) throw new Error('unable to parse numeric part of quantity');
  let unscaled = BigInt(digitsText);
  let decScale = point < 0 ? 0 : value.length - point - 1;
  if (base === 10) decScale = (decScale - exponent) | 0;
  else unscaled *= 1n << BigInt(exponent);
  if (unscaled !== 0n) [unscaled, decScale] = [roundUpToNano(unscaled, decScale), 9];
  if (format === 'BinarySI' && compare({ kind: 'dec', unscaled, scale: decScale }, { kind: 'int', value: INT64_MAX, scale: 0 }) > 0) [unscaled, decScale] = [INT64_MAX, 0];
  return { kind: 'dec', unscaled: positive ? unscaled : -unscaled, scale: decScale };
}

/** inf.Dec.Round(x, 9, RoundUp) of a positive amount: to nano units, any remainder rounded up. */
function roundUpToNano(unscaled: bigint, scale: number): bigint {
  if (scale <= 9) return unscaled * pow10(9 - scale);
  const shift = scale - 9;
  if (shift > digits(unscaled)) return 1n;
  const divisor = 10n ** BigInt(shift);
  const quotient = unscaled / divisor;
  return unscaled % divisor === 0n ? quotient : quotient + 1n;
}

function isQuantity(s: string): boolean {
  try {
    parseQuantity(s);
    return true;
  } catch {
    return false;
  }
}

/** Quantity.Cmp through kube's pointer: the receiver turns decimal when either is. */
function cmp(q: Quantity, other: Quantity): number {
  if (q.amount.kind === 'dec' || other.amount.kind === 'dec') q.amount = asDec(q.amount);
  return compare(q.amount, other.amount);
}

/** resource.NewQuantity(n, DecimalExponent). */
const fromInt = (n: bigint): Amount => ({ kind: 'int', value: n, scale: 0 });

export function registerQuantity(env: Environment): void {
  const T = 'kubernetes.Quantity';
  registerKubeType(env, T, Quantity);
  env.registerFunction(`quantity(string): ${T}`, (s: string) => new Quantity(parseQuantity(s)));
  env.registerFunction('isQuantity(string): bool', isQuantity);
  env.registerFunction(`sign(${T}): int`, (q: Quantity) => BigInt(signOf(exact(q.amount)[0])));
  env.registerFunction(`${T}.isGreaterThan(${T}): bool`, (a: Quantity, b: Quantity) => cmp(a, b) === 1);
  env.registerFunction(`${T}.isLessThan(${T}): bool`, (a: Quantity, b: Quantity) => cmp(a, b) === -1);
  env.registerFunction(`${T}.compareTo(${T}): int`, (a: Quantity, b: Quantity) => BigInt(cmp(a, b)));
  env.registerFunction(`${T}.asApproximateFloat(): double`, (q: Quantity) => asApproximateFloat(q.amount));
  env.registerFunction(`${T}.isInteger(): bool`, (q: Quantity) => asInt64(q.amount) !== undefined);
  env.registerFunction(`${T}.asInteger(): int`, (q: Quantity) => {
    const n = asInt64(q.amount);
    if (n === undefined) throw new Error('cannot convert value to integer');
    return n;
  });
  env.registerFunction(`${T}.add(${T}): ${T}`, (a: Quantity, b: Quantity) => new Quantity(add(a.amount, b.amount), true));
  env.registerFunction(`${T}.add(int): ${T}`, (a: Quantity, n: bigint) => new Quantity(add(a.amount, fromInt(n)), true));
  env.registerFunction(`${T}.sub(${T}): ${T}`, (a: Quantity, b: Quantity) => new Quantity(sub(a.amount, b.amount), true));
  env.registerFunction(`${T}.sub(int): ${T}`, (a: Quantity, n: bigint) => new Quantity(sub(a.amount, fromInt(n)), true));
}
