/**
 * The first node of a cel-js AST for which `check` finds something, depth
 * first over every node (`args` holds the children, in lists or alone). Both
 * load-time refusals (refused.ts, library/static-checks.ts) walk this way;
 * they differ only in whether a call or its arguments are asked first.
 */
import type { ASTNode } from '@marcbachmann/cel-js';

export function firstInAst<T>(ast: ASTNode, check: (node: ASTNode) => T | undefined, order: 'arguments-first' | 'call-first'): T | undefined {
  const visit = (value: unknown): T | undefined => {
    if (Array.isArray(value)) {
      for (const child of value) {
        const found = visit(child);
        if (found !== undefined) return found;
      }
      return undefined;
    }
    if (typeof value !== 'object' || value === null || !('op' in value)) return undefined;
    const node = value as ASTNode;
    if (order === 'arguments-first') return visit(node.args) ?? check(node);
    return check(node) ?? visit(node.args);
  };
  return visit(ast);
}
