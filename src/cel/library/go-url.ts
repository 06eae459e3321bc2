/**
 * Go's net/url (Go 1.26) as kube's url library uses it: Parse and
 * ParseRequestURI, Hostname, Port, EscapedPath, Query and String, ported
 * from Go's source. Go works on bytes: a string is handled here as its UTF-8
 * bytes, one JS character per byte ("binary"), and turned back at the end.
 * Go 1.26's default urlstrictcolons applies (kube-apiserver and the fact
 * recorder are built with `godebug default=go1.26`).
 */
import { goQuote } from './go-quote.js';
import { parseAddr, is4 } from './netip.js';

/** A parsed URL: Go's url.URL fields, as binary strings. */
export interface GoURL {
  readonly scheme: string;
  readonly opaque: string;
  readonly user?: { readonly username: string; readonly password?: string };
  readonly host: string;
  readonly path: string;
  readonly rawPath: string;
  readonly forceQuery: boolean;
  readonly rawQuery: string;
  readonly fragment: string;
  readonly rawFragment: string;
  readonly omitHost: boolean;
}

type Mode = 'path' | 'pathSegment' | 'host' | 'zone' | 'userPassword' | 'queryComponent' | 'fragment';

export const toBinary = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
export const fromBinary = (s: string) => Buffer.from(s, 'latin1').toString('utf8');

const isAlnum = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
const isHex = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/** net/url's shouldEscape (gen_encoding_table.go). */
function shouldEscape(c: string, mode: Mode): boolean {
  if (isAlnum(c)) return false;
  if ((mode === 'host' || mode === 'zone') && "!$&'()*+,;=:[]<>\"".includes(c)) return false;
  if ('-_.~'.includes(c)) return false;
  if ('$&+,/:;=?@'.includes(c)) {
    switch (mode) {
      case 'path':
        return c === '?';
      case 'pathSegment':
        return c === '/' || c === ';' || c === ',' || c === '?';
      case 'userPassword':
        return c === '@' || c === '/' || c === '?' || c === ':';
      case 'queryComponent':
        return true;
      case 'fragment':
        return false;
      default:
        break;
    }
  }
  if (mode === 'fragment' && '!()*'.includes(c)) return false;
  return true;
}

const quote = goQuote;

/** net/url's unescape: every % must start a hex pair; a host allows %XX only for bytes ≥ 0x80 (and %25). */
function unescape(s: string, mode: Mode): string {
  let n = 0;
  let hasPlus = false;
  for (let i = 0; i < s.length; ) {
    const c = s[i];
    if (c === '%') {
      n++;
      if (i + 2 >= s.length || !isHex(s[i + 1]) || !isHex(s[i + 2])) throw new Error(`invalid URL escape ${quote(s.slice(i, i + 3))}`);
      const v = parseInt(s.slice(i + 1, i + 3), 16);
      if (mode === 'host' && v < 0x80 && s.slice(i, i + 3) !== '%25') throw new Error(`invalid URL escape ${quote(s.slice(i, i + 3))}`);
      if (mode === 'zone' && s.slice(i, i + 3) !== '%25' && v !== 0x20 && shouldEscape(String.fromCharCode(v), 'host')) throw new Error(`invalid URL escape ${quote(s.slice(i, i + 3))}`);
      i += 3;
    } else if (c === '+') {
      hasPlus = mode === 'queryComponent';
      i++;
    } else {
      if ((mode === 'host' || mode === 'zone') && c.charCodeAt(0) < 0x80 && shouldEscape(c, mode)) throw new Error(`invalid character ${quote(c)} in host name`);
      i++;
    }
  }
  if (n === 0 && !hasPlus) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%') {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (s[i] === '+') {
      out += mode === 'queryComponent' ? ' ' : '+';
    } else {
      out += s[i];
    }
  }
  return out;
}

/** net/url's escape: %XX (upper-case) for every byte the mode escapes; a space in a query component as '+'. */
function escape(s: string, mode: Mode): string {
  let out = '';
  for (const c of s) {
    if (c === ' ' && mode === 'queryComponent') out += '+';
    else if (shouldEscape(c, mode)) out += `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
    else out += c;
  }
  return out;
}

/** getScheme: letters, then letters, digits, + - . up to the first ':'. */
function getScheme(raw: string): [string, string] {
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) continue;
    if ((c >= '0' && c <= '9') || c === '+' || c === '-' || c === '.') {
      if (i === 0) return ['', raw];
      continue;
    }
    if (c === ':') {
      if (i === 0) throw new Error('missing protocol scheme');
      return [raw.slice(0, i), raw.slice(i + 1)];
    }
    return ['', raw];
  }
  return ['', raw];
}

const validOptionalPort = (port: string) => port === '' || /^:[0-9]*$/.test(port);

function validUserinfo(s: string): boolean {
  for (const c of fromBinary(s)) if (!isAlnum(c) && !"-._:~!$&'()*+,;=%@".includes(c)) return false;
  return true;
}

function parseHost(scheme: string, host: string): string {
  const open = host.lastIndexOf('[');
  if (open > 0) throw new Error('invalid IP-literal');
  if (open === 0) {
    const close = host.lastIndexOf(']');
    if (close < 0) throw new Error("missing ']' in host");
    const colonPort = host.slice(close + 1);
    if (!validOptionalPort(colonPort)) throw new Error(`invalid port ${quote(colonPort)} after host`);
    const port = unescape(colonPort, 'host');
    const hostname = host.slice(1, close);
    const zone = hostname.indexOf('%25');
    const unescaped = zone >= 0 ? unescape(hostname.slice(0, zone), 'host') + unescape(hostname.slice(zone), 'zone') : unescape(hostname, 'host');
    let addr;
    try {
      addr = parseAddr(fromBinary(unescaped));
    } catch (err) {
      throw new Error(`invalid host: ${(err as Error).message}`, { cause: err });
    }
    if (is4(addr)) throw new Error('invalid IP-literal');
    return `[${unescaped}]${port}`;
  }
  let colon = host.indexOf(':');
  if (colon !== -1) {
    const last = host.lastIndexOf(':');
    // Go 1.26 (urlstrictcolons): http and https take the first colon, so a second one is a bad port.
    if (last !== colon && scheme !== 'http' && scheme !== 'https') colon = last;
    const colonPort = host.slice(colon);
    if (!validOptionalPort(colonPort)) throw new Error(`invalid port ${quote(colonPort)} after host`);
  }
  return unescape(host, 'host');
}

function parseAuthority(scheme: string, authority: string): Pick<GoURL, 'user' | 'host'> {
  const at = authority.lastIndexOf('@');
  const host = parseHost(scheme, at < 0 ? authority : authority.slice(at + 1));
  if (at < 0) return { host };
  const userinfo = authority.slice(0, at);
  if (!validUserinfo(userinfo)) throw new Error('net/url: invalid userinfo');
  const colon = userinfo.indexOf(':');
  if (colon < 0) return { host, user: { username: unescape(userinfo, 'userPassword') } };
  return { host, user: { username: unescape(userinfo.slice(0, colon), 'userPassword'), password: unescape(userinfo.slice(colon + 1), 'userPassword') } };
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/** net/url's parse, on a binary string, without the fragment. */
function parse(raw: string, viaRequest: boolean): GoURL {
  if (CONTROL.test(raw)) throw new Error('net/url: invalid control character in URL');
  if (raw === '' && viaRequest) throw new Error('empty url');
  const url = { scheme: '', opaque: '', user: undefined as GoURL['user'], host: '', path: '', rawPath: '', forceQuery: false, rawQuery: '', fragment: '', rawFragment: '', omitHost: false };
  if (raw === '*') return { ...url, path: '*' };
  let rest: string;
  [url.scheme, rest] = getScheme(raw);
  url.scheme = url.scheme.toLowerCase();
  if (rest.endsWith('?') && rest.split('?').length === 2) {
    url.forceQuery = true;
    rest = rest.slice(0, -1);
  } else {
    const q = rest.indexOf('?');
    if (q >= 0) [rest, url.rawQuery] = [rest.slice(0, q), rest.slice(q + 1)];
  }
  if (!rest.startsWith('/')) {
    if (url.scheme !== '') return { ...url, opaque: rest };
    if (viaRequest) throw new Error('invalid URI for request');
    if (rest.split('/', 1)[0].includes(':')) throw new Error('first path segment in URL cannot contain colon');
  }
  if ((url.scheme !== '' || (!viaRequest && !rest.startsWith('///'))) && rest.startsWith('//')) {
    let authority = rest.slice(2);
    rest = '';
    const slash = authority.indexOf('/');
    if (slash >= 0) [authority, rest] = [authority.slice(0, slash), authority.slice(slash)];
    Object.assign(url, parseAuthority(url.scheme, authority));
  } else if (url.scheme !== '' && rest.startsWith('/')) {
    url.omitHost = true;
  }
  url.path = unescape(rest, 'path');
  url.rawPath = escape(url.path, 'path') === rest ? '' : rest;
  return url;
}

/** url.Parse: the fragment split off at the first '#', then parsed as a reference. */
export function parseURL(raw: string): GoURL {
  const hash = raw.indexOf('#');
  const url = parse(hash < 0 ? raw : raw.slice(0, hash), false);
  if (hash < 0) return url;
  const rawFragment = raw.slice(hash + 1);
  const fragment = unescape(rawFragment, 'fragment');
  return { ...url, fragment, rawFragment: escape(fragment, 'fragment') === rawFragment ? '' : rawFragment };
}

/** url.ParseRequestURI: an absolute URI or an absolute path, the fragment not split off. */
export function parseRequestURI(raw: string): GoURL {
  return parse(raw, true);
}

function validEncoded(s: string, mode: Mode): boolean {
  for (const c of s) if (!"!$&'()*+,;=:@[]%".includes(c) && shouldEscape(c, mode)) return false;
  return true;
}

/** The raw form if it is a valid encoding of the decoded one, else undefined. */
function validRaw(raw: string, decoded: string, mode: Mode): string | undefined {
  if (raw === '' || !validEncoded(raw, mode)) return undefined;
  try {
    return unescape(raw, mode) === decoded ? raw : undefined;
  } catch {
    return undefined;
  }
}

/** URL.EscapedPath: the path as written when that encodes it, else escaped ('*' as is). */
export function escapedPath(u: GoURL): string {
  return validRaw(u.rawPath, u.path, 'path') ?? (u.path === '*' ? '*' : escape(u.path, 'path'));
}

/** splitHostPort: a valid :port split off the end, then brackets removed. */
function splitHostPort(hostPort: string): [string, string] {
  let [host, port] = [hostPort, ''];
  const colon = host.lastIndexOf(':');
  if (colon !== -1 && validOptionalPort(host.slice(colon))) [host, port] = [host.slice(0, colon), host.slice(colon + 1)];
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return [host, port];
}

export const hostname = (u: GoURL) => splitHostPort(u.host)[0];
export const port = (u: GoURL) => splitHostPort(u.host)[1];

/** URL.Query: ParseQuery with its errors ignored (a pair with ';' or a bad escape is skipped); none past 10,000 pairs. */
export function query(u: GoURL): Map<string, string[]> {
  const values = new Map<string, string[]>();
  let rest = u.rawQuery;
  if (rest.split('&').length > 10_000) return values;
  while (rest !== '') {
    const amp = rest.indexOf('&');
    const pair = amp < 0 ? rest : rest.slice(0, amp);
    rest = amp < 0 ? '' : rest.slice(amp + 1);
    if (pair.includes(';') || pair === '') continue;
    const eq = pair.indexOf('=');
    try {
      const key = unescape(eq < 0 ? pair : pair.slice(0, eq), 'queryComponent');
      const value = unescape(eq < 0 ? '' : pair.slice(eq + 1), 'queryComponent');
      const list = values.get(key) ?? [];
      list.push(value);
      values.set(key, list);
    } catch {
      // ParseQuery skips the pair and goes on
    }
  }
  return values;
}

/** URL.String, which kube's URL equality compares. */
export function urlString(u: GoURL): string {
  let out = u.scheme === '' ? '' : `${u.scheme}:`;
  if (u.opaque !== '') {
    out += u.opaque;
  } else {
    if ((u.scheme !== '' || u.host !== '' || u.user) && !(u.omitHost && u.host === '' && !u.user)) {
      if (u.host !== '' || u.path !== '' || u.user) out += '//';
      if (u.user) out += `${escape(u.user.username, 'userPassword')}${u.user.password === undefined ? '' : `:${escape(u.user.password, 'userPassword')}`}@`;
      if (u.host !== '') out += escape(u.host, 'host');
    }
    const path = escapedPath(u);
    if (path !== '' && path[0] !== '/' && u.host !== '') out += '/';
    if (out === '' && path.split('/', 1)[0].includes(':')) out += './';
    out += path;
  }
  if (u.forceQuery || u.rawQuery !== '') out += `?${u.rawQuery}`;
  if (u.fragment !== '') out += `#${validRaw(u.rawFragment, u.fragment, 'fragment') ?? escape(u.fragment, 'fragment')}`;
  return out;
}
