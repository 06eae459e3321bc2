/**
 * Lists and maps read from the `claims` or `user` variable. kube hands them to CEL
 * wrapped (unescapeLister / unescapeMapper in plugin/pkg/authenticator/token/oidc/oidc.go,
 * for `__dot__` keys), and the wrapper embeds only traits.Lister / traits.Mapper: it
 * has no IsZeroValue, so `optional.ofNonZeroValue` keeps even an empty one
 * (kube-apiserver 1.37: `optional.ofNonZeroValue(claims.label)` with `"label": []`
 * is present). A list or map built by the expression itself is zero when empty.
 */
const fromInput = new WeakSet<object>();

/** Marks `value` and every list and map inside it; an input already marked is not walked again. */
export function markInput(value: unknown): void {
  if (value === null || typeof value !== 'object' || fromInput.has(value)) return;
  if (!Array.isArray(value) && !(value instanceof Map) && ![Object.prototype, null].includes(Object.getPrototypeOf(value) as object)) return;
  fromInput.add(value);
  const children = value instanceof Map ? value.values() : Object.values(value);
  for (const child of children) markInput(child);
}

/** Whether `value` is a list or map read from the input (see the module comment). */
export function isInputContainer(value: unknown): boolean {
  return value !== null && typeof value === 'object' && fromInput.has(value);
}
