/**
 * Go's net/netip as kube's ip and cidr libraries use it: ParseAddr,
 * ParsePrefix, Addr.String (RFC 5952), the Is* predicates, Prefix.Contains,
 * Overlaps and Masked. Ported from Go's source rather than taken from an npm
 * IP library, whose rules differ where kube's answers depend on them (leading
 * zeros, embedded IPv4, zones, unmasked prefixes).
 */

import { goQuote } from './go-quote.js';

/** Go's %q of a JS string. */
const quote = (s: string) => goQuote(Buffer.from(s, 'utf8').toString('latin1'));

/** An address: 4 bytes (IPv4) or 16 (IPv6), with its zone (IPv6 only, '' for none). */
export interface Addr {
  readonly bytes: Uint8Array;
  readonly zone: string;
}

/** A prefix as ParsePrefix keeps it: the address as written (not masked), and its length. */
export interface Prefix {
  readonly addr: Addr;
  readonly bits: number;
}

const fail = (input: string, msg: string, at?: string): never => {
  throw new Error(`ParseAddr(${quote(input)}): ${msg}${at ? ` (at ${quote(at)})` : ''}`);
};

/** Go's netip.ParseAddr: dotted IPv4 without leading zeros, or IPv6 with an optional zone. */
export function parseAddr(s: string): Addr {
  for (const c of s) {
    if (c === '.') return { bytes: parseIPv4(s, s), zone: '' };
    if (c === ':') return parseIPv6(s);
    if (c === '%') fail(s, 'missing IPv6 address');
  }
  return fail(s, 'unable to parse IP');
}

/** parseIPv4Fields: exactly four decimal fields, each 0-255, no leading zero. */
function parseIPv4(input: string, s: string): Uint8Array {
  const fields = new Uint8Array(4);
  let [val, pos, digits] = [0, 0, 0];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c >= '0' && c <= '9') {
      if (digits === 1 && val === 0) fail(input, 'IPv4 field has octet with leading zero');
      val = val * 10 + Number(c);
      digits++;
      if (val > 255) fail(input, 'IPv4 field has value >255');
    } else if (c === '.') {
      if (i === 0 || i === s.length - 1 || s[i - 1] === '.') fail(input, 'IPv4 field must have at least one digit', s.slice(i));
      if (pos === 3) fail(input, 'IPv4 address too long');
      fields[pos++] = val;
      [val, digits] = [0, 0];
    } else {
      fail(input, 'unexpected character', s.slice(i));
    }
  }
  if (pos < 3) fail(input, 'IPv4 address too short');
  fields[3] = val;
  return fields;
}

const HEX = /^[0-9a-fA-F]$/;

/** parseIPv6: hex groups of up to 4 digits, one '::', an optional trailing IPv4 in the last 32 bits. */
function parseIPv6(input: string): Addr {
  let s = input;
  let zone = '';
  const percent = s.indexOf('%');
  if (percent !== -1) {
    [s, zone] = [s.slice(0, percent), s.slice(percent + 1)];
    if (zone === '') fail(input, 'zone must be a non-empty string');
  }
  const ip = new Uint8Array(16);
  let ellipsis = -1;
  if (s.startsWith('::')) {
    ellipsis = 0;
    s = s.slice(2);
    if (s === '') return { bytes: ip, zone };
  }
  let i = 0;
  while (i < 16) {
    let off = 0;
    let acc = 0;
    for (; off < s.length && HEX.test(s[off]); off++) {
      acc = acc * 16 + parseInt(s[off], 16);
      if (off > 3) fail(input, 'each group must have 4 or less digits', s);
      if (acc > 0xffff) fail(input, 'IPv6 field has value >=2^16', s);
    }
    if (off === 0) fail(input, 'each colon-separated field must have at least one digit', s);
    if (off < s.length && s[off] === '.') {
      if (ellipsis < 0 && i !== 12) fail(input, 'embedded IPv4 address must replace the final 2 fields of the address', s);
      if (i + 4 > 16) fail(input, 'too many hex fields to fit an embedded IPv4 at the end of the address', s);
      ip.set(parseIPv4(input, s), i);
      s = '';
      i += 4;
      break;
    }
    ip[i] = acc >> 8;
    ip[i + 1] = acc & 0xff;
    i += 2;
    s = s.slice(off);
    if (s === '') break;
    if (s[0] !== ':') fail(input, 'unexpected character, want colon', s);
    else if (s.length === 1) fail(input, 'colon must be followed by more characters', s);
    s = s.slice(1);
    if (s[0] === ':') {
      if (ellipsis >= 0) fail(input, 'multiple :: in address', s);
      ellipsis = i;
      s = s.slice(1);
      if (s === '') break;
    }
  }
  if (s !== '') fail(input, 'trailing garbage after address', s);
  if (i < 16) {
    if (ellipsis < 0) fail(input, 'address string too short');
    const n = 16 - i;
    ip.copyWithin(ellipsis + n, ellipsis, i);
    ip.fill(0, ellipsis, ellipsis + n);
  } else if (ellipsis >= 0) {
    fail(input, 'the :: must expand to at least one field of zeros');
  }
  return { bytes: ip, zone };
}

/** Go's netip.ParsePrefix: `addr/bits`, bits in decimal without sign or leading zero; no zone; the address kept unmasked. */
export function parsePrefix(s: string): Prefix {
  const failPrefix = (msg: string): never => {
    throw new Error(`netip.ParsePrefix(${quote(s)}): ${msg}`);
  };
  const slash = s.lastIndexOf('/');
  if (slash < 0) failPrefix("no '/'");
  let addr: Addr;
  try {
    addr = parseAddr(s.slice(0, slash));
  } catch (err) {
    return failPrefix((err as Error).message);
  }
  if (addr.zone !== '') failPrefix('IPv6 zones cannot be present in a prefix');
  const bitsText = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]*)$/.test(bitsText)) failPrefix(`bad bits after slash: ${quote(bitsText)}`);
  const bits = Number(bitsText);
  if (bits > addr.bytes.length * 8) failPrefix('prefix length out of range');
  return { addr, bits };
}

export const is4 = (ip: Addr) => ip.bytes.length === 4;

/** Addr.Is4In6: an IPv6 address of the form ::ffff:a.b.c.d. */
export function is4In6(ip: Addr): boolean {
  const b = ip.bytes;
  return b.length === 16 && b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
}

const group = (ip: Addr, i: number) => (ip.bytes[2 * i] << 8) | ip.bytes[2 * i + 1];

/** Addr.String: dotted IPv4; IPv6 in RFC 5952 form (lower-case hex, the first longest run of two or more zero groups as '::'). */
export function addrString(ip: Addr): string {
  if (is4(ip)) return ip.bytes.join('.');
  if (is4In6(ip)) return `::ffff:${ip.bytes.slice(12).join('.')}${ip.zone ? `%${ip.zone}` : ''}`;
  let [zeroStart, zeroEnd] = [255, 255];
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && group(ip, j) === 0) j++;
    if (j - i >= 2 && j - i > zeroEnd - zeroStart) [zeroStart, zeroEnd] = [i, j];
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === zeroStart) {
      out += '::';
      i = zeroEnd;
      if (i >= 8) break;
    } else if (i > 0) {
      out += ':';
    }
    out += group(ip, i).toString(16);
  }
  return ip.zone ? `${out}%${ip.zone}` : out;
}

export const prefixString = (p: Prefix) => `${addrString(p.addr)}/${p.bits}`;

/** Addr ==: same family, bytes and zone. */
export const addrEqual = (a: Addr, b: Addr) => a.bytes.length === b.bytes.length && a.zone === b.zone && a.bytes.every((x, i) => x === b.bytes[i]);

/** Prefix ==: the same (unmasked) address and length. */
export const prefixEqual = (a: Prefix, b: Prefix) => a.bits === b.bits && addrEqual(a.addr, b.addr);

/** The last four bytes of an IPv4-mapped IPv6 address (Addr.Unmap), else the address. */
const unmap = (ip: Addr): Addr => (is4In6(ip) ? { bytes: ip.bytes.slice(12), zone: '' } : ip);

export function isUnspecified(ip: Addr): boolean {
  return ip.zone === '' && ip.bytes.every((x) => x === 0);
}

export function isLoopback(addr: Addr): boolean {
  const ip = unmap(addr);
  return is4(ip) ? ip.bytes[0] === 127 : ip.bytes.slice(0, 15).every((x) => x === 0) && ip.bytes[15] === 1;
}

export function isMulticast(addr: Addr): boolean {
  const ip = unmap(addr);
  return is4(ip) ? (ip.bytes[0] & 0xf0) === 0xe0 : ip.bytes[0] === 0xff;
}

export function isLinkLocalMulticast(addr: Addr): boolean {
  const ip = unmap(addr);
  return is4(ip) ? ip.bytes[0] === 224 && ip.bytes[1] === 0 && ip.bytes[2] === 0 : (group(ip, 0) & 0xff0f) === 0xff02;
}

export function isLinkLocalUnicast(addr: Addr): boolean {
  const ip = unmap(addr);
  return is4(ip) ? ip.bytes[0] === 169 && ip.bytes[1] === 254 : (group(ip, 0) & 0xffc0) === 0xfe80;
}

/** Go's IsGlobalUnicast: private and ULA addresses count; unspecified, broadcast, loopback, multicast and link-local do not. */
export function isGlobalUnicast(addr: Addr): boolean {
  const ip = unmap(addr);
  if (is4(ip) && (ip.bytes.every((x) => x === 0) || ip.bytes.every((x) => x === 255))) return false;
  if (!is4(ip) && ip.zone === '' && ip.bytes.every((x) => x === 0)) return false;
  return !isLoopback(ip) && !isMulticast(ip) && !isLinkLocalUnicast(ip);
}

/** The address with all but its first `bits` bits cleared, and no zone (Addr.Prefix's address). */
function mask(ip: Addr, bits: number): Addr {
  const bytes = ip.bytes.map((x, i) => {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    return x & ((0xff << (8 - keep)) & 0xff);
  });
  return { bytes, zone: '' };
}

/** Prefix.Masked: the canonical prefix, host bits cleared. */
export const masked = (p: Prefix): Prefix => ({ addr: mask(p.addr, p.bits), bits: p.bits });

/** Prefix.Contains: same family, no zone, the first `bits` bits equal. */
export function contains(p: Prefix, ip: Addr): boolean {
  if (ip.zone !== '' || ip.bytes.length !== p.addr.bytes.length) return false;
  return addrEqual(mask(ip, p.bits), mask(p.addr, p.bits));
}

/** Prefix.Overlaps: same family and equal over the shorter of the two lengths. */
export function overlaps(p: Prefix, o: Prefix): boolean {
  if (prefixEqual(p, o)) return true;
  if (p.addr.bytes.length !== o.addr.bytes.length) return false;
  const bits = Math.min(p.bits, o.bits);
  return addrEqual(mask(p.addr, bits), mask(o.addr, bits));
}
