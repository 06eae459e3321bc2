/**
 * Compiling and running authentication expressions the way kube-apiserver
 * does (k8s.io/apiserver pkg/authentication/cel/compile.go, mapper.go):
 * parse and type-check against the variable's environment, require the
 * output type the field asks for (`bool` for validation rules, anything for
 * mappings), and refuse at load what could cost more than kube allows.
 *
 * Programs are cached by variable, return type and text: the config schema
 * compiles each expression once at load, and the authenticator that runs it
 * gets the same program back instead of compiling again.
 */
import type { ASTNode } from '@marcbachmann/cel-js';
import { COST_LIMIT, estimateCost } from './cost.js';
import { environmentFor, type CelVariable } from './environment.js';
import { formatDouble } from './library/go-format.js';
import { markInput } from './library/input-values.js';
import { markNative } from './library/native-lists.js';
import { opaqueEquals } from './library/opaque.js';
import { staticRefusal } from './library/static-checks.js';
import { re2Matches } from './library/regex.js';
import { codePointStrings } from './library/strings.js';
import { refusedAtLoad } from './refused.js';

export { isNativeStringList } from './library/native-lists.js';

/** What the field requires of the expression's type: kube's ReturnTypes (AnyType or BoolType). */
export type CelReturn = 'any' | 'bool';

/** A compiled expression. `evaluate` never throws. */
export interface CelProgram {
  readonly expression: string;
  readonly ast: ASTNode;
  /** The value, or the reason evaluation failed (a missing key, no such overload…). */
  evaluate(input: unknown): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string };
}

export type CompileResult = { readonly ok: true; readonly program: CelProgram } | { readonly ok: false; readonly error: string };

const cache = new Map<string, CompileResult>();

/**
 * Compiles `expression` over `variable` (`claims` or `user`).
 *
 * @returns the program, or kube's kind of error: `compilation failed: …` with the
 *   line and column, `must evaluate to bool`, or a cost past kube's limit.
 * @example
 * compileExpression('claims', "'oidc:' + claims.sub", 'any') // { ok: true, program }
 */
export function compileExpression(variable: CelVariable, expression: string, returns: CelReturn): CompileResult {
  const key = `${variable}\0${returns}\0${expression}`;
  let result = cache.get(key);
  if (!result) {
    result = compile(variable, expression, returns);
    cache.set(key, result);
  }
  return result;
}

function compile(variable: CelVariable, expression: string, returns: CelReturn): CompileResult {
  const env = environmentFor(variable);
  let parsed: ReturnType<typeof env.parse>;
  try {
    parsed = env.parse(expression);
  } catch (err) {
    return { ok: false, error: compilationFailed(expression, err) };
  }
  const refused = refusedAtLoad(parsed.ast);
  if (refused) return { ok: false, error: `compilation failed: ${refused.reason} at ${position(expression, refused.at)}` };
  const checked = parsed.check();
  if (!checked.valid) return { ok: false, error: compilationFailed(expression, checked.error) };
  const typed = staticRefusal(parsed.ast);
  if (typed) return { ok: false, error: `compilation failed: ${typed.reason} at ${position(expression, typed.at)}` };
  adjustToCelGo(parsed.ast);
  // compile.go: the output type must be the one asked for; dyn is not bool.
  if (returns === 'bool' && checked.type !== 'bool') return { ok: false, error: 'must evaluate to bool' };
  const cost = estimateCost(parsed.ast);
  if (cost > COST_LIMIT) {
    return {
      ok: false,
      error: `too expensive: up to ${cost} cost units on the largest token, past kube-apiserver's limit of ${COST_LIMIT} per expression; avoid a comprehension (all, exists, map, filter) inside another over claims`,
    };
  }
  const program: CelProgram = {
    expression,
    ast: parsed.ast,
    evaluate(input) {
      markInput(input);
      try {
        return { ok: true, value: parsed({ [variable]: input }) as unknown };
      } catch (err) {
        return { ok: false, error: firstLine(err) };
      }
    },
  };
  return { ok: true, program };
}

/** ASCII letters only, as cel-go's ext/strings.go upperASCII/lowerASCII: `ñandú` → `ñANDú`. */
const upperAscii = (s: string) => s.replace(/[a-z]+/g, (m) => m.toUpperCase());
const lowerAscii = (s: string) => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

/** A checked node's evaluation: `handle(receiverAndArgs, …)` for calls, `handle(left, right, …)` for operators. */
type Handle = (...args: unknown[]) => unknown;

/**
 * Where the library differs from cel-go, the checked node is rerouted: the
 * library's built-in overloads cannot be registered again. `upperAscii` and
 * `lowerAscii` change ASCII letters only; `matches` is RE2; `string(double)`
 * is Go's strconv 'g' form (`1.7e+09`); `split` marks its list as native
 * (see {@link isNativeStringList}), and `+` with an empty list gives the other
 * list itself, as cel-go's list Add does, so a native list stays native;
 * `==` with one of kube's types on the left is that type's Equal (./library/opaque.ts).
 * Relies on cel-js 8's checked nodes evaluating through `node.handle`;
 * test/cel/kube-libraries.test.ts and test/authn/cel.test.ts fail if that changes.
 */
function adjustToCelGo(node: unknown): void {
  if (Array.isArray(node)) {
    for (const child of node) adjustToCelGo(child);
    return;
  }
  if (typeof node !== 'object' || node === null || !('op' in node)) return;
  const ast = node as ASTNode & { handle?: Handle };
  adjustToCelGo(ast.args);
  evaluateInOrder(ast);
  if (typeof ast.handle !== 'function') return;
  const inner = ast.handle;
  const name: unknown = Array.isArray(ast.args) ? ast.args[0] : undefined;
  if (ast.op === '==' || ast.op === '!=') {
    const negate = ast.op === '!=';
    ast.handle = (left, right, ...rest) => {
      const equal = opaqueEquals(left, right);
      return equal === undefined ? inner(left, right, ...rest) : equal !== negate;
    };
  } else if (ast.op === '+') {
    ast.handle = (left, right, ...rest) =>
      Array.isArray(left) && Array.isArray(right) && (left.length === 0 || right.length === 0) ? (right.length === 0 ? left : right) : inner(left, right, ...rest);
  } else if (ast.op === 'call' && name === 'string') {
    ast.handle = (args, ...rest) => {
      const [value] = args as unknown[];
      return typeof value === 'number' ? formatDouble(value) : inner(args, ...rest);
    };
  } else if (ast.op !== 'rcall') {
    return;
  } else if (name === 'upperAscii' || name === 'lowerAscii') {
    const convert = name === 'upperAscii' ? upperAscii : lowerAscii;
    ast.handle = (args, ...rest) => {
      const [text] = args as unknown[];
      return typeof text === 'string' ? convert(text) : inner(args, ...rest);
    };
  } else if (name === 'matches') {
    ast.handle = (args, ...rest) => {
      const [text, pattern] = args as unknown[];
      return typeof text === 'string' && typeof pattern === 'string' ? re2Matches(text, pattern) : inner(args, ...rest);
    };
  } else if (typeof name === 'string' && Object.hasOwn(codePointStrings, name)) {
    const byCodePoint = codePointStrings[name];
    ast.handle = (args, ...rest) => {
      const [text, ...more] = args as never[];
      return typeof text === 'string' ? byCodePoint(text, ...more) : inner(args, ...rest);
    };
  } else if (name === 'split') {
    ast.handle = (...args) => {
      const value = inner(...args);
      return Array.isArray(value) ? markNative(value) : value;
    };
  }
}

interface Evaluator {
  run(node: unknown, ctx: unknown): unknown;
}
type Node = ASTNode & { handle?: Handle; receiverWithArgs?: unknown[]; setMeta?(key: string, value: unknown): unknown };
const inOrder = (ev: Evaluator, nodes: readonly unknown[], ctx: unknown) => nodes.map((n) => ev.run(n, ctx));

/**
 * cel-js evaluates a list literal's elements and a call's receiver and
 * arguments last to first; cel-go first to last. The order shows where an
 * evaluation changes a value: kube's quantity isLessThan, isGreaterThan and
 * compareTo turn their receiver decimal (./library/quantity.ts), so
 * `[q.isInteger(), q.isLessThan(big), q.isInteger()]` is `[true, true, false]`.
 * A macro (map, all…) keeps its own evaluation: cel-js runs it ahead of this.
 */
function evaluateInOrder(node: Node): void {
  if (typeof node.setMeta !== 'function') return;
  if (node.op === 'list' && node.args.length > 1) {
    node.setMeta('evaluate', (ev: Evaluator, self: Node, ctx: unknown) => inOrder(ev, self.args as unknown[], ctx));
  } else if (node.op === 'call' && typeof node.handle === 'function') {
    node.setMeta('evaluate', (ev: Evaluator, self: Node, ctx: unknown) => self.handle!(inOrder(ev, (self.args as unknown[])[1] as unknown[], ctx), self, ev));
  } else if (node.op === 'rcall' && typeof node.handle === 'function' && Array.isArray(node.receiverWithArgs)) {
    node.setMeta('evaluate', (ev: Evaluator, self: Node, ctx: unknown) => self.handle!(inOrder(ev, self.receiverWithArgs!, ctx), ev, self));
  }
}

/** `compilation failed: <what> at line L, column C`, from the library's error and its source range. */
function compilationFailed(expression: string, err: unknown): string {
  const range = typeof err === 'object' && err !== null && 'range' in err ? (err as { range?: { start: number } }).range : undefined;
  const node = typeof err === 'object' && err !== null && 'node' in err ? (err as { node?: { start?: number } }).node : undefined;
  const at = range?.start ?? node?.start;
  return `compilation failed: ${firstLine(err)}${at === undefined ? '' : ` at ${position(expression, at)}`}`;
}

function position(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n', 1)[0] ?? message;
}

/**
 * Whether the expression reads `claims.<field>` or `claims.?<field>` (not
 * `claims['<field>']`): kube's hasSelectExp (apis/apiserver/validation/validation.go),
 * which decides whether an email username also looks at email_verified.
 */
export function selectsClaim(program: CelProgram, field: string): boolean {
  const visit = (value: unknown): boolean => {
    if (Array.isArray(value)) return value.some(visit);
    if (typeof value !== 'object' || value === null || !('op' in value)) return false;
    const node = value as ASTNode;
    if ((node.op === '.' || node.op === '.?') && node.args[1] === field && node.args[0].op === 'id' && node.args[0].args === 'claims') return true;
    return visit(node.args);
  };
  return visit(program.ast);
}
