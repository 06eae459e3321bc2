/**
 * cel-go's sets extension (ext.Sets, ext/sets.go), which kube enables since 1.29:
 * sets.contains, sets.equivalent and sets.intersects over lists, with CEL equality
 * (1 == 1.0 == 1u). Both lists must have one element type (./static-checks.ts).
 */
import type { Environment } from '@marcbachmann/cel-js';
import { SetsNamespace } from './namespaces.js';
import { celEqual, type List } from './values.js';

const has = (list: List, v: unknown) => list.some((x) => celEqual(x, v));

export function registerSets(env: Environment): void {
  env.registerType('SetsNamespace', SetsNamespace);
  env.registerConstant('sets', 'SetsNamespace', new SetsNamespace());
  env.registerFunction('SetsNamespace.contains(list, list): bool', (_: SetsNamespace, a: List, b: List) => b.every((v) => has(a, v)));
  env.registerFunction('SetsNamespace.equivalent(list, list): bool', (_: SetsNamespace, a: List, b: List) => a.every((v) => has(b, v)) && b.every((v) => has(a, v)));
  env.registerFunction('SetsNamespace.intersects(list, list): bool', (_: SetsNamespace, a: List, b: List) => a.some((v) => has(b, v)));
}
