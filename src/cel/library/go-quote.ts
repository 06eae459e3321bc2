/**
 * Go's strconv.Quote (the `%q` of fmt), which Go's error messages use and
 * some of kube's values carry (a named format's validate() messages). The
 * input is a "binary" string: one JS character per byte, as ./go-url.ts
 * handles Go strings; invalid UTF-8 is written as \xNN, as Go does.
 */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
const ESCAPES: Record<number, string> = { 7: '\\a', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t', 11: '\\v' };
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/** Go's utf8.DecodeRune: the rune and its width, or undefined (width 1) for invalid UTF-8. */
function decodeRune(bytes: Buffer, i: number): [number | undefined, number] {
  const b0 = bytes[i];
  if (b0 < 0x80) return [b0, 1];
  const need = b0 >= 0xc2 && b0 <= 0xdf ? 1 : b0 >= 0xe0 && b0 <= 0xef ? 2 : b0 >= 0xf0 && b0 <= 0xf4 ? 3 : 0;
  if (need === 0) return [undefined, 1];
  let r = b0 & (0x3f >> need);
  for (let k = 1; k <= need; k++) {
    const b = bytes[i + k];
    // Go's accept ranges: the second byte limits overlongs, surrogates and values past U+10FFFF.
    const [lo, hi] = k === 1 && b0 === 0xe0 ? [0xa0, 0xbf] : k === 1 && b0 === 0xed ? [0x80, 0x9f] : k === 1 && b0 === 0xf0 ? [0x90, 0xbf] : k === 1 && b0 === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    if (b === undefined || b < lo || b > hi) return [undefined, 1];
    r = (r << 6) | (b & 0x3f);
  }
  return [r, need + 1];
}

/** strconv.Quote of a binary string. */
export function goQuote(binary: string): string {
  const bytes = Buffer.from(binary, 'latin1');
  let out = '"';
  for (let i = 0; i < bytes.length; ) {
    const [r, width] = decodeRune(bytes, i);
    if (r === undefined) {
      out += `\\x${hex(bytes[i], 2)}`;
    } else if (r === 0x22 || r === 0x5c) {
      out += `\\${String.fromCharCode(r)}`;
    } else if (r === 0x20 || PRINTABLE.test(String.fromCodePoint(r))) {
      out += String.fromCodePoint(r);
    } else if (ESCAPES[r]) {
      out += ESCAPES[r];
    } else if (r < 0x20 || r === 0x7f) {
      out += `\\x${hex(r, 2)}`;
    } else if (r < 0x10000) {
      out += `\\u${hex(r, 4)}`;
    } else {
      out += `\\U${hex(r, 8)}`;
    }
    i += width;
  }
  return `${out}"`;
}
