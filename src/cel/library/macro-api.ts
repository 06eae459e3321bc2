/**
 * The parts of cel-js's checker, evaluator and contexts our macros use
 * (./comprehensions.ts, ./optionals.ts): cel-js exports no types for them.
 */
export interface CelType {
  readonly kind: string;
  readonly name: string;
  isDynOrBool(): boolean;
  readonly keyType: CelType;
  readonly valueType: CelType;
}
export interface Checker {
  check(node: unknown, ctx: Context): CelType;
  getType(name: string): CelType;
  registry: { getListType(t: CelType): CelType; getMapType(k: CelType, v: CelType): CelType; getOptionalType(t: CelType): CelType };
  createError(code: string, message: string, node?: unknown): Error;
}
export interface Evaluator {
  run(node: unknown, ctx: Context): unknown;
}
export interface Context {
  forkWithVariable(name: string, type: CelType): Context;
  reuse(parent: Context): Context;
  setIterValue(value: unknown, ev: Evaluator): Context;
}
export interface Node {
  readonly op: string;
  readonly args: unknown;
}
export interface MacroInput {
  readonly args: readonly Node[];
  readonly receiver: Node;
  readonly methodName: string;
}
