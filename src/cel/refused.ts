/**
 * What compiles in one of kube's environment and cel-js's but not the other,
 * refused at load with a message that names it:
 *
 * - kube's libraries the proxy does not implement (yet): a configuration
 *   using them works on kube-apiserver and is refused here, never run with
 *   other semantics;
 * - functions cel-js has and kube does not (`bytes.hex()`, `cel.bind`…): kube
 *   refuses the file, so the proxy must not accept it.
 */
import type { ASTNode } from '@marcbachmann/cel-js';
import { firstInAst } from './ast-search.js';

/** Functions of kube's base environment (pkg/cel/environment/base.go) that the proxy refuses, by library. */
const UNSUPPORTED: Record<string, readonly string[]> = {
  "cel-go's string.format (locale-dependent number formatting)": ['format'],
};
const UNSUPPORTED_BY_NAME = new Map(Object.entries(UNSUPPORTED).flatMap(([library, names]) => names.map((name) => [name, library] as const)));

/** Member functions cel-js has that kube-apiserver's environment does not. */
const NOT_IN_KUBE = new Set(['hex', 'json', 'at', 'base64', 'string', 'bind']);

export interface Refusal {
  readonly reason: string;
  /** Offset of the call in the expression. */
  readonly at: number;
}

/** The first call in `ast` the proxy refuses at load, if any. */
export function refusedAtLoad(ast: ASTNode): Refusal | undefined {
  // Inner calls first: in `url(x).getHost()` the refusal names `url`.
  return firstInAst(
    ast,
    (found): Refusal | undefined => {
      const node = found;
      if (node.op !== 'call' && node.op !== 'rcall') return undefined;
      const name = node.args[0];
      const library = UNSUPPORTED_BY_NAME.get(name);
      if (library) return { reason: `'${name}' is part of ${library}, which kube-apiserver has and the proxy does not support`, at: node.start ?? 0 };
      if (node.op === 'rcall' && NOT_IN_KUBE.has(name)) return { reason: `undeclared reference to '${name}': kube-apiserver has no such function`, at: node.start ?? 0 };
      return undefined;
    },
    'arguments-first',
  );
}
