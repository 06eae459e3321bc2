/**
 * The receivers of kube's namespaced functions (`strings.quote`, `lists.range`,
 * `sets.contains`, `format.named`): cel-js resolves `a.b(x)` as a method on `a`, so each
 * namespace is a constant of its own type, as cel-js's own `optional.of`.
 */
export class StringsNamespace {}
export class ListsNamespace {}
export class SetsNamespace {}
export class FormatNamespace {}
