/**
 * Lists cel-go would hand back backed by a native Go []string: `split`'s and
 * `findAll`'s results, passed on unchanged (also through `+ []`, which cel-go
 * answers with the same list). kube's convertCELValueToStringList
 * (plugin/pkg/authenticator/token/oidc/oidc.go) only takes lists backed by
 * []interface{} or []ref.Val, so it refuses these as groups or extra values.
 */
const native = new WeakSet<readonly unknown[]>();

export function markNative<T extends readonly unknown[]>(list: T): T {
  native.add(list);
  return list;
}

/** Whether `value` is such a list (see the module comment). */
export function isNativeStringList(value: unknown): boolean {
  return Array.isArray(value) && native.has(value);
}
