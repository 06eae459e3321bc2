/**
 * The rest of cel-go's optional library as kube enables it (cel.OptionalTypes()
 * at its latest version, pkg/cel/environment/base.go): the optMap and
 * optFlatMap macros, optional.ofNonZeroValue, and optional.unwrap /
 * unwrapOpt. cel-js has optional.of/none, value, hasValue, or, orValue, first
 * and last.
 *
 *   opt.optMap(v, expr)      // opt.hasValue() ? optional.of(expr with v = opt.value()) : optional.none()
 *   opt.optFlatMap(v, expr)  // opt.hasValue() ? expr with v = opt.value() : optional.none()
 */
import { Optional, type Environment } from '@marcbachmann/cel-js';
import { isInputContainer } from './input-values.js';
import { typeOf, type List } from './values.js';
import type { CelType, Checker, Evaluator, Context, MacroInput } from './macro-api.js';

function optionalMacro(name: 'optMap' | 'optFlatMap') {
  return ({ args, receiver }: MacroInput) => {
    const [variable, body] = args;
    if (variable.op !== 'id' || typeof variable.args !== 'string') throw new Error(`${name}() variable name must be a simple identifier`);
    const varName = variable.args;
    let scope: Context | undefined;
    return {
      typeCheck(chk: Checker, _m: unknown, ctx: Context): CelType {
        const target = chk.check(receiver, ctx);
        // cel-go expands to target.hasValue() ? …: only an optional (or dyn) has hasValue().
        if (target.kind !== 'optional' && target.kind !== 'dyn') throw chk.createError('no_matching_overload', `found no matching overload for 'hasValue' applied to '${target.kind}.()'`, receiver);
        scope = ctx.forkWithVariable(varName, target.kind === 'optional' ? target.valueType : chk.getType('dyn'));
        const result = chk.check(body, scope);
        if (name === 'optMap') return chk.registry.getOptionalType(result);
        if (result.kind !== 'optional' && result.kind !== 'dyn') throw chk.createError('no_matching_overload', `found no matching overload for '_?_:_' applied to '(bool, ${result.kind}, optional_type)'`, body);
        return result.kind === 'optional' ? result : chk.registry.getOptionalType(chk.getType('dyn'));
      },
      evaluate(ev: Evaluator, _m: unknown, ctx: Context): unknown {
        const target = ev.run(receiver, ctx);
        if (!(target instanceof Optional)) throw new Error(`no such overload: ${typeOf(target)}.hasValue()`);
        if (!target.hasValue()) return Optional.none();
        scope!.reuse(ctx);
        const value = ev.run(body, scope!.setIterValue(target.value(), ev));
        // optFlatMap answers whatever its expression gave (cel-go's conditional does not check it).
        return name === 'optMap' ? Optional.of(value) : value;
      },
    };
  };
}

/** cel-go's zero values (traits.Zeroer): null, false, 0, 0u, 0.0, '', b'', [], {}, duration 0, timestamp 0001-01-01T00:00:00Z. */
function isZero(value: unknown): boolean {
  switch (typeOf(value)) {
    case 'null_type':
      return true;
    case 'bool':
    case 'int':
    case 'double':
    case 'string':
      return !value;
    case 'uint':
      return (value as { valueOf(): bigint }).valueOf() === 0n;
    case 'bytes':
      return (value as List).length === 0;
    // One read from claims or user is never zero in kube (./input-values.ts).
    case 'list':
      return !isInputContainer(value) && (value as List).length === 0;
    case 'map':
      return !isInputContainer(value) && (value instanceof Map ? value.size === 0 : Object.keys(value as object).length === 0);
    case 'google.protobuf.Duration': {
      const duration = value as { seconds: bigint; nanos: number };
      return duration.seconds === 0n && duration.nanos === 0;
    }
    case 'google.protobuf.Timestamp':
      return (value as Date).getTime() === GO_ZERO_TIME;
    default:
      return false;
  }
}
/** Go's zero time.Time, which cel-go's Timestamp.IsZeroValue tests (not the Unix epoch). */
const GO_ZERO_TIME = Date.parse('0001-01-01T00:00:00Z');

/** optional.unwrap: the values of the present optionals; an element that is not optional is an error. */
function unwrap(list: List): unknown[] {
  return list.flatMap((element) => {
    if (!(element instanceof Optional)) throw new Error(`value ${String(element)} is not optional`);
    return element.hasValue() ? [element.value() as unknown] : [];
  });
}

export function registerOptionals(env: Environment): void {
  const macro = (signature: string, handler: (input: MacroInput) => unknown) => env.registerFunction(signature, handler as never);
  macro('optional.optMap(ast, ast): optional<dyn>', optionalMacro('optMap'));
  macro('optional.optFlatMap(ast, ast): optional<dyn>', optionalMacro('optFlatMap'));
  env.registerFunction('OptionalNamespace.ofNonZeroValue(A): optional<A>', (_: unknown, value: unknown) => (isZero(value) ? Optional.none() : Optional.of(value)));
  env.registerFunction('OptionalNamespace.unwrap(list<optional<A>>): list<A>', (_: unknown, list: List) => unwrap(list));
  env.registerFunction('list<optional<A>>.unwrapOpt(): list<A>', unwrap);
  // For `[]` and a claim's list, which cel-js does not match to list<optional<A>>; a list known
  // to hold something else is refused at load by ./static-checks.ts, as cel-go's checker does.
  env.registerFunction('OptionalNamespace.unwrap(list<dyn>): list<dyn>', (_: unknown, list: List) => unwrap(list));
  env.registerFunction('list<dyn>.unwrapOpt(): list<dyn>', unwrap);
}
