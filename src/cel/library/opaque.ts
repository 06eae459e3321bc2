/**
 * kube's own CEL value types (net.IP, net.CIDR, kubernetes.URL, kubernetes.Semver,
 * kubernetes.Quantity). Their Equal in cel-go is `types.ValOrErr(other, "no such
 * overload")` for a value of another type, so `ip(x) == claims.s` fails at run
 * time where `claims.s == ip(x)` is false (a string's Equal): compile.ts reroutes
 * `==` and `!=` through {@link opaqueEquals}.
 */
import type { Environment } from '@marcbachmann/cel-js';
export abstract class KubeValue {
  /** Equal to a value of the same class. */
  abstract equals(other: KubeValue): boolean;
  /** Whether cel-go's Equal takes `right` at all (else "no such overload"). */
  acceptsEqual(right: KubeValue): boolean {
    return right.constructor === this.constructor;
  }
}

/** cel-go's `left == right` when `left` is one of kube's types, else undefined. */
export function opaqueEquals(left: unknown, right: unknown): boolean | undefined {
  if (!(left instanceof KubeValue)) return undefined;
  // types.Equal: null on either side is only equal to null.
  if (right === null) return false;
  if (!(right instanceof KubeValue) || !left.acceptsEqual(right)) throw new Error('no such overload');
  return left.equals(right);
}

/** Registers one of kube's types: comparable with `==` to itself and to null (false, as cel-go's types.Equal). */
export function registerKubeType(env: Environment, name: string, type: new (...args: never[]) => KubeValue): void {
  env.registerType(name, type);
  env.registerOperator(`${name} == ${name}`, (a: KubeValue, b: KubeValue) => a.equals(b));
  env.registerOperator(`${name} == null`, () => false);
}
