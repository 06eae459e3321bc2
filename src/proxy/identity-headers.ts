/**
 * How an Identity is written as kube-apiserver requestheader headers, and which
 * client headers must never reach the upstream because of it. The rules follow
 * k8s.io/apiserver pkg/authentication/request/headerrequest and client-go's
 * transport.SetAuthProxyHeaders; see docs/architecture.md "Header rules".
 */
import type { Identity } from '../authn/identity.js';
import type { IdentityHeadersConfig } from '../config/schema.js';

/** RFC 7230 token characters, except '%', which kube-apiserver would unescape. */
const LEGAL_KEY_BYTE = /^[!#$&'*+\-.^_`|~0-9A-Za-z]$/;

/**
 * Percent-encodes an extra key byte by byte, as client-go does: kube-apiserver
 * lower-cases the header's key and then path-unescapes it, so
 * `example.com/team` travels as `example.com%2Fteam`.
 */
export function encodeExtraKey(key: string): string {
  let out = '';
  for (const byte of Buffer.from(key, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += LEGAL_KEY_BYTE.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A value a header line cannot carry: any C0 control character, or DEL. */
const CONTROL_CHAR = /[\u0000-\u001f\u007f]/;

/**
 * Header values travel as bytes; Go reads them as UTF-8. Node and undici write
 * header strings as latin1, so hand them the UTF-8 bytes one char per byte.
 */
const asHeaderBytes = (value: string): string =>
  /^[\x00-\x7f]*$/.test(value) ? value : Buffer.from(value, 'utf8').toString('latin1');

export type IdentityHeaderLines = { ok: true; lines: string[] } | { ok: false; field: string };

/** The first configured name of each header is the one we set; all are stripped (see strip.ts). */
export function identityHeaderLines(identity: Identity, names: IdentityHeadersConfig): IdentityHeaderLines {
  const lines: string[] = [];
  const add = (name: string, value: string): boolean => {
    if (CONTROL_CHAR.test(value)) return false;
    lines.push(name, asHeaderBytes(value));
    return true;
  };

  if (identity.username === '' || !add(names.user[0]!, identity.username)) {
    return { ok: false, field: 'username' };
  }
  if (identity.uid && !add(names.uid[0]!, identity.uid)) return { ok: false, field: 'uid' };
  // One header line per group: kube-apiserver never splits a value on commas.
  for (const group of identity.groups) {
    if (group !== '' && !add(names.group[0]!, group)) return { ok: false, field: 'groups' };
  }
  for (const [key, values] of Object.entries(identity.extra)) {
    if (key === '') continue;
    const name = names.extraPrefix[0]! + encodeExtraKey(key);
    for (const value of values) {
      if (!add(name, value)) return { ok: false, field: `extra[${key}]` };
    }
  }
  return { ok: true, lines };
}
