/**
 * cel-go's strings extension at the version kube enables (ext.Strings(v2),
 * pkg/cel/environment/base.go): the functions cel-js lacks. Indexes count
 * code points, as cel-go counts runes. Not `reverse` (version 3) and not
 * `format`, which kube has but we refuse at load (see docs/cel.md).
 */
import type { Environment } from '@marcbachmann/cel-js';
import { StringsNamespace } from './namespaces.js';

export function registerStrings(env: Environment): void {
  env.registerFunction('string.charAt(int): string', (s: string, i: bigint) => {
    const chars = [...s];
    if (i < 0n || i > BigInt(chars.length)) throw new Error(`index out of range: ${i}`);
    return chars[Number(i)] ?? '';
  });
  env.registerFunction('string.replace(string, string): string', (s: string, from: string, to: string) => replace(s, from, to, -1n));
  env.registerFunction('string.replace(string, string, int): string', replace);
  env.registerType('StringsNamespace', StringsNamespace);
  env.registerConstant('strings', 'StringsNamespace', new StringsNamespace());
  env.registerFunction('StringsNamespace.quote(string): string', (_: StringsNamespace, s: string) => quote(s));
}

/** Go's strings.Replace: the first `n` (all when n < 0) non-overlapping instances; an empty `from` matches before every code point and at the end. */
function replace(s: string, from: string, to: string, n: bigint): string {
  if (n === 0n) return s;
  if (from === '') {
    const chars = [...s];
    const limit = n < 0n ? chars.length + 1 : Number(n);
    return chars.map((c, i) => (i < limit ? to : '') + c).join('') + (chars.length < limit ? to : '');
  }
  const parts = s.split(from);
  if (n < 0n || n >= BigInt(parts.length - 1)) return parts.join(to);
  const k = Number(n);
  return parts.slice(0, k + 1).join(to) + from + parts.slice(k + 1).join(from);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const ESCAPES: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '\\': '\\\\', '"': '\\"' };

/** cel-go's strings.quote: a double-quoted string with the C escapes; a lone surrogate (invalid UTF-8 in Go) becomes U+FFFD. */
function quote(s: string): string {
  const escaped = [...s.replace(LONE_SURROGATE, '\uFFFD')].map((c) => ESCAPES[c] ?? c).join('');
  return `"${escaped}"`;
}

/**
 * cel-go's indexOf, lastIndexOf and substring count runes (code points); cel-js
 * counts UTF-16 units, so `'🙂é'.indexOf('é')` is 1 in kube and 2 in cel-js.
 * compile.ts reroutes the library's built-ins to these (ext/strings.go).
 */
export const codePointStrings: Record<string, (s: string, ...args: never[]) => unknown> = {
  indexOf(s: string, sub: string, offset: bigint = 0n): bigint {
    const [runes, subs] = [[...s], [...sub]];
    if (offset < 0n) throw new Error(`index out of range: ${offset}`);
    if (subs.length === 0) return offset > BigInt(runes.length) ? BigInt(runes.length) : offset;
    if (offset >= BigInt(runes.length)) return -1n;
    for (let i = Number(offset); i <= runes.length - subs.length; i++) if (subs.every((c, j) => runes[i + j] === c)) return BigInt(i);
    return -1n;
  },
  lastIndexOf(s: string, sub: string, offset?: bigint): bigint {
    const [runes, subs] = [[...s], [...sub]];
    if (offset === undefined) {
      if (subs.length === 0) return BigInt(runes.length);
      if (Buffer.byteLength(s) < Buffer.byteLength(sub)) return -1n;
      offset = BigInt(runes.length - 1);
    }
    if (offset < 0n) throw new Error(`index out of range: ${offset}`);
    if (subs.length === 0) return offset > BigInt(runes.length) ? BigInt(runes.length) : offset;
    if (offset >= BigInt(runes.length)) return -1n;
    for (let i = Math.min(Number(offset), runes.length - subs.length); i >= 0; i--) if (subs.every((c, j) => runes[i + j] === c)) return BigInt(i);
    return -1n;
  },
  substring(s: string, start: bigint, end?: bigint): string {
    const runes = [...s];
    const length = BigInt(runes.length);
    if (end !== undefined && start > end) throw new Error(`invalid substring range. start: ${start}, end: ${end}`);
    if (start < 0n || start > length) throw new Error(`index out of range: ${start}`);
    if (end !== undefined && (end < 0n || end > length)) throw new Error(`index out of range: ${end}`);
    return runes.slice(Number(start), end === undefined ? undefined : Number(end)).join('');
  },
};
