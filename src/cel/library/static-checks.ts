/**
 * kube's typed overloads, enforced once the expression is checked. The list
 * and set functions are registered over list<dyn> (see ./lists.ts), so a
 * statically typed receiver that kube would refuse (`[[1]].sort()`,
 * `[1].indexOf('a')`, `sets.contains([1], [1.0])`, `[1].unwrapOpt()`) is refused here, with
 * cel-go's wording; so is a literal pattern RE2 refuses (cel-go validates
 * regex literals at compile time).
 */
import type { ASTNode } from '@marcbachmann/cel-js';
import { firstInAst } from '../ast-search.js';
import { re2 } from './regex.js';
import { COMPARABLE_TYPES as COMPARABLE } from './values.js';

interface CheckedType {
  readonly kind: string;
  readonly name: string;
  readonly valueType?: CheckedType;
}
type Checked = ASTNode & { checkedType?: CheckedType; start?: number };

const SUMMABLE = new Set(['int', 'uint', 'double', 'google.protobuf.Duration']);

/** The element type of a list type, or undefined when it is not statically known (dyn). */
function element(type: CheckedType | undefined): CheckedType | undefined {
  if (type?.kind !== 'list' || type.valueType?.kind === 'dyn' || type.valueType?.kind === 'param') return undefined;
  return type.valueType;
}

const celName = (type: CheckedType | undefined) => (type?.name ?? 'dyn').replace(/<(.*)>/, '($1)');

function rule(name: string, receiver: Checked, args: readonly Checked[]): string | undefined {
  const of = element(receiver.checkedType);
  const noOverload = () => `found no matching overload for '${name}' applied to '${celName(receiver.checkedType)}.(${args.map((a) => celName(a.checkedType)).join(', ')})'`;
  switch (name) {
    case 'sort':
    case 'isSorted':
    case 'min':
    case 'max':
      return of && !COMPARABLE.has(of.name) ? noOverload() : undefined;
    case 'sum':
      return of && !SUMMABLE.has(of.name) ? noOverload() : undefined;
    case 'indexOf':
    case 'lastIndexOf': {
      const arg = args[0]?.checkedType;
      return of && arg && arg.kind !== 'dyn' && arg.name !== of.name ? noOverload() : undefined;
    }
    case 'unwrapOpt':
      return of && of.kind !== 'optional' ? noOverload() : undefined;
    case 'flatten':
      return args.length === 0 && of && of.kind !== 'list' ? noOverload() : undefined;
    case 'matches':
    case 'find':
    case 'findAll': {
      const pattern = args[0];
      if (pattern?.op !== 'value' || typeof pattern.args !== 'string') return undefined;
      try {
        re2(pattern.args);
        return undefined;
      } catch (err) {
        return name === 'matches' ? `invalid matches argument: ${(err as Error).message}` : (err as Error).message;
      }
    }
    default:
      return undefined;
  }
}

function setsRule(name: string, args: readonly Checked[]): string | undefined {
  const [a, b] = args.map((arg) => element(arg.checkedType));
  if (a && b && a.name !== b.name) return `found no matching overload for 'sets.${name}' applied to '(${args.map((x) => celName(x.checkedType)).join(', ')})'`;
  return undefined;
}

/** optional.unwrap(list): a list known to hold something other than optionals is refused (cel-go's list(optional(V)) overload). */
function unwrapRule(args: readonly Checked[]): string | undefined {
  const of = element(args[0]?.checkedType);
  return of && of.kind !== 'optional' ? `found no matching overload for 'optional.unwrap' applied to '(${celName(args[0].checkedType)})'` : undefined;
}

/** The first call kube's typed overloads would refuse, with the offset of the call. */
export function staticRefusal(ast: ASTNode): { reason: string; at: number } | undefined {
  return firstInAst(
    ast,
    (found) => {
      const node = found as Checked;
      if (node.op !== 'rcall') return undefined;
      const [name, receiver, args] = node.args as [string, Checked, Checked[]];
      const namespace = receiver.op === 'id' ? receiver.args : undefined;
      const reason = namespace === 'sets' ? setsRule(name, args) : namespace === 'optional' && name === 'unwrap' ? unwrapRule(args) : rule(name, receiver, args);
      return reason ? { reason, at: node.start ?? 0 } : undefined;
    },
    'call-first',
  );
}
