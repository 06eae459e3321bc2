/**
 * A worst-case cost for an expression, computed once at load.
 *
 * kube-apiserver bounds each evaluation at run time (cel.CostLimit of
 * celconfig.PerCallLimit, 1,000,000 units: pkg/apis/cel/config.go, applied in
 * pkg/cel/environment/base.go) and refuses the token when an evaluation goes
 * past it. We bound it before any token arrives instead: every list or map an
 * expression iterates is assumed as large as a token can carry, and an
 * expression whose worst case is past kube's limit is refused at load. That
 * refuses some expressions kube would run on small tokens (a comprehension
 * inside a comprehension over two claims), never one it would refuse.
 */
import type { ASTNode } from '@marcbachmann/cel-js';

/** kube's per-call cost limit (celconfig.PerCallLimit). */
export const COST_LIMIT = 1_000_000;

/**
 * The most elements one list or map in a token can have: a JWT travels in a
 * header, and Node refuses headers past 16 KiB, whose base64 carries 12 KiB of
 * JSON, at least two bytes (`0,`) an element.
 */
export const MAX_ELEMENTS = 6_144;

/** Macros that visit every element of their receiver: one-variable, two-variable (ext.TwoVarComprehensions) and sortBy. */
const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'existsOne', 'map', 'filter', 'transformList', 'transformMap', 'transformMapEntry', 'sortBy']);
const QUANTIFIERS = new Set(['all', 'exists', 'exists_one', 'existsOne']);

/** How many of a comprehension's arguments name variables: two for transform* and the three-argument quantifiers. */
const variables = (name: string, argc: number) => (name.startsWith('transform') || (QUANTIFIERS.has(name) && argc === 3) ? 2 : 1);

/** cel-go's bound on lists.range (ext/lists.go defaultMaxRangeSize). */
const MAX_RANGE = 1_000_000;

/** Functions whose cost grows with a string or list's length (cel-go charges ~0.1 per character). */
const LINEAR = new Set(['matches', 'split', 'join', 'replace', 'contains', 'startsWith', 'endsWith', 'indexOf', 'lastIndexOf', 'lowerAscii', 'upperAscii', 'trim', 'reverse', 'sort', 'distinct', 'isSorted', 'size']);
const LINEAR_COST = Math.ceil((MAX_ELEMENTS * 2) / 10);

const isNode = (value: unknown): value is ASTNode => typeof value === 'object' && value !== null && 'op' in value && 'args' in value;

/**
 * The largest number of elements `range` can have: a literal's own size; `lists.range(n)`'s
 * n (up to cel-go's bound when n is not a literal); else {@link MAX_ELEMENTS}.
 */
function elements(range: ASTNode): number {
  if (range.op === 'list') return range.args.length;
  if (range.op === 'map') return range.args.length;
  const size = rangeSize(range);
  return size ?? MAX_ELEMENTS;
}

/** `lists.range(n)`'s largest size, if `node` is that call: a literal n, else cel-go's bound. */
function rangeSize(node: ASTNode): number | undefined {
  if (node.op !== 'rcall') return undefined;
  const [name, target, args] = node.args;
  if (name !== 'range' || target.op !== 'id' || target.args !== 'lists') return undefined;
  return literalRange(args[0]) ?? MAX_RANGE;
}

/** A literal n within cel-go's bound (outside it, lists.range fails before it costs anything). */
function literalRange(arg: ASTNode | undefined): number | undefined {
  const n: unknown = arg?.op === 'value' ? arg.args : undefined;
  return typeof n === 'bigint' && n >= 0n && n <= BigInt(MAX_RANGE) ? Number(n) : undefined;
}

/** What building `lists.range(n)` costs: n for a literal; a claim's n is charged where the list is iterated. */
function rangeBuildCost(node: ASTNode): number {
  if (rangeSize(node) === undefined || node.op !== 'rcall') return 0;
  return literalRange(node.args[2][0]) ?? 0;
}

/**
 * Worst-case cost of evaluating `node`, in cel-go-like units (one per
 * operation, ~0.1 per character a string function scans). A comprehension
 * multiplies its body's operations by the elements it visits, but not the
 * characters its string functions scan: the elements' characters together
 * are bounded by the token's size, however they are split.
 */
export function estimateCost(node: ASTNode): number {
  const { steps, scans } = cost(node, new Set());
  return steps + scans;
}

interface Cost {
  /** Operations, multiplied by every comprehension around them. */
  readonly steps: number;
  /** Characters scanned, bounded by the token's size whatever the nesting. */
  readonly scans: number;
}

const add = (...costs: Cost[]): Cost => ({ steps: costs.reduce((n, c) => n + c.steps, 0), scans: costs.reduce((n, c) => n + c.scans, 0) });
const STEP: Cost = { steps: 1, scans: 0 };
const SCAN: Cost = { steps: 1, scans: LINEAR_COST };

/** Comprehension variables in scope. */
type Bound = ReadonlySet<string>;

function cost(node: ASTNode, bound: Bound): Cost {
  switch (node.op) {
    case 'value':
    case 'id':
      return STEP;
    case 'rcall': {
      const [name, target, args] = node.args;
      if (COMPREHENSIONS.has(name) && args.length >= 2) {
        const range = cost(target, bound);
        const count = variables(name, args.length);
        const inner = new Set([...bound, ...args.slice(0, count).flatMap((a) => (a.op === 'id' ? [a.args] : []))]);
        const body = all(args.slice(count), inner);
        return { steps: range.steps + elements(target) * (body.steps + 1), scans: range.scans + body.scans };
      }
      const parse = name === 'validate' ? validateCharge(target) : PARSERS.get(name);
      if (parse) return add(cost(target, bound), all(args, bound), parseCost(args[0], parse, bound));
      // lists.range(n) builds n elements.
      return add(cost(target, bound), all(args, bound), LINEAR.has(name) ? scanCost(target, bound) : STEP, { steps: rangeBuildCost(node), scans: 0 });
    }
    case 'call': {
      const [name, args] = node.args;
      const parse = PARSERS.get(name);
      if (parse) return add(all(args, bound), parseCost(args[0], parse, bound));
      return add(all(args, bound), LINEAR.has(name) && args[0] ? scanCost(args[0], bound) : STEP);
    }
    case 'in':
      // A list's membership test visits its elements.
      return add(all(node.args, bound), { steps: elements(node.args[1]), scans: 0 });
    default: {
      const args: unknown = node.args;
      return add(STEP, all(Array.isArray(args) ? args.flat() : [args], bound));
    }
  }
}

function all(values: readonly unknown[], bound: Bound): Cost {
  return add(...values.filter(isNode).map((value) => cost(value, bound)));
}

/**
 * kube's functions that parse a string argument, with what cel-go charges for
 * a string of n bytes (library/cost.go CallCost): ⌈n × perByte⌉ + fixed. The
 * StringTraversalCostFactor is 0.1 a byte, twice for ip.isCanonical;
 * containsIP/containsCIDR also traverse the CIDR (at most 16 bytes). A named
 * format's validate is ⌈(1 + n) × 0.1⌉ × ⌈its regex size × 0.25⌉ (see {@link validateCharge}).
 */
interface Charge {
  /** What cel-go charges for a string of n bytes. */
  exact(n: number): number;
  /** A bound linear in n: exact(n) ≤ n × perByte + fixed. */
  readonly perByte: number;
  readonly fixed: number;
}
const linear = (perByte: number, fixed: number): Charge => ({ exact: (n) => Math.ceil(n * perByte) + fixed, perByte, fixed: fixed + 1 });
const PARSERS: ReadonlyMap<string, Charge> = new Map([
  ...['ip', 'cidr', 'isIP', 'isCIDR', 'url', 'isURL', 'semver', 'isSemver', 'quantity', 'isQuantity'].map((name) => [name, linear(0.1, 0)] as const),
  ...['containsIP', 'containsCIDR'].map((name) => [name, linear(0.1, 8)] as const),
  ['isCanonical', linear(0.2, 0)],
]);

/** kube's named formats' MaxRegexSize (library/format.go); a format not named in the expression may be the largest, uri's. */
const FORMAT_REGEX_SIZE: Record<string, number> = {
  dns1123Label: 30, dns1123Subdomain: 60, dns1035Label: 30, qualifiedName: 60, dns1123LabelPrefix: 30, dns1123SubdomainPrefix: 60, dns1035LabelPrefix: 30,
  labelValue: 40, uri: 1103, uuid: 70, byte: 84, date: 71, datetime: 71,
};

/** validate's charge: ⌈(1 + n) × 0.1⌉ × r ≤ n × 0.1 × r + 1.1 × r, r = ⌈regex size × 0.25⌉ of the format when `format.<name>()` is the receiver. */
function validateCharge(receiver: ASTNode): Charge {
  let size = FORMAT_REGEX_SIZE.uri;
  if (receiver.op === 'rcall') {
    const [name, namespace] = receiver.args;
    if (namespace.op === 'id' && namespace.args === 'format' && Object.hasOwn(FORMAT_REGEX_SIZE, name)) size = FORMAT_REGEX_SIZE[name];
  }
  const r = Math.ceil(size * 0.25);
  return { exact: (n) => Math.ceil((1 + n) * 0.1) * r, perByte: 0.1 * r, fixed: Math.ceil(1.1 * r) };
}

/** The largest string a token carries (a JWT in a 16 KiB header: 12 KiB of JSON). */
const MAX_STRING = MAX_ELEMENTS * 2;

/**
 * What parsing `arg` costs: a string of known largest size (a literal, literals
 * joined, string() of a number) its own; an element of a comprehension (its
 * variable, or a field or index of it) as a scan of its bytes, since the
 * elements together are no larger than the token, plus the fixed part on every
 * iteration; anything else in full, on every iteration of a comprehension
 * around it, as cel-go charges it.
 */
function parseCost(arg: ASTNode | undefined, charge: Charge, bound: Bound): Cost {
  if (arg === undefined) return STEP;
  // cidr.containsIP(ip(x)): the inner call paid for its parse.
  if ((arg.op === 'call' || arg.op === 'rcall') && PARSERS.has(arg.args[0])) return { steps: 1 + charge.fixed, scans: 0 };
  const size = stringSize(arg);
  if (size !== undefined) return { steps: 1 + charge.exact(size), scans: 0 };
  if (elementOf(arg, bound)) return { steps: 1 + charge.fixed, scans: Math.ceil(MAX_STRING * charge.perByte) };
  return { steps: 1 + charge.exact(MAX_STRING), scans: 0 };
}

/** The most bytes a string expression can have, when it does not depend on the token; else undefined. */
function stringSize(node: ASTNode): number | undefined {
  if (node.op === 'value') return typeof node.args === 'string' ? Buffer.byteLength(node.args) : 0;
  if (node.op === '+') {
    const [left, right] = node.args.map((n) => stringSize(n));
    return left === undefined || right === undefined ? undefined : left + right;
  }
  // string() of an int, uint, double or bool: at most 24 bytes (-1.2345678901234567e+308).
  if (node.op === 'call' && node.args[0] === 'string' && node.args[1].length === 1) {
    const type = (node.args[1][0] as ASTNode & { checkedType?: { name?: string } }).checkedType?.name;
    return type === 'int' || type === 'uint' || type === 'double' || type === 'bool' ? 24 : undefined;
  }
  return undefined;
}

/**
 * What a function linear in its string or list costs: a literal its own size;
 * a comprehension's element a scan, counted once (the elements are one token);
 * anything else a token's largest, again on every iteration of a comprehension
 * around it (`lists.range(20000).all(i, !claims.s.contains('b'))` over a 1 KB
 * claim is cancelled by kube).
 */
function scanCost(operand: ASTNode, bound: Bound): Cost {
  if (operand.op === 'list') return { steps: 1 + operand.args.length, scans: 0 };
  const size = stringSize(operand);
  if (size !== undefined) return { steps: 1 + Math.ceil(size * 0.1), scans: 0 };
  return elementOf(operand, bound) ? SCAN : { steps: 1 + LINEAR_COST, scans: 0 };
}

/**
 * Whether `node` is made from comprehension variables alone (and literals): the
 * variable, a field or index of it, or a call over such values
 * (`url(k).getHostname()`). Its size follows the element's, and the elements
 * together are no larger than the token.
 */
function elementOf(node: ASTNode, bound: Bound): boolean {
  if (node.op === 'id') return bound.has(node.args);
  if (node.op === 'value') return false;
  const children: unknown[] = Array.isArray(node.args) ? node.args.flat() : [node.args];
  const nodes = children.filter(isNode);
  return nodes.some((child) => child.op !== 'value') && nodes.every((child) => child.op === 'value' || elementOf(child, bound));
}
