/**
 * How an Identity is written as kube-apiserver requestheader headers, and which
 * client headers must never reach the upstream because of it. The rules follow
 * k8s.io/apiserver pkg/authentication/request/headerrequest and client-go's
 * transport.SetAuthProxyHeaders; see docs/architecture.md "Header rules".
 *
 * Every value either arrives byte for byte or the request is refused: a value
 * kube-apiserver would read differently is another principal, possibly someone else's.
 */
import type { Identity } from '../request/identity.js';
import type { IdentityHeadersConfig } from '../config/schema.js';

/**
 * RFC 7230 token characters that survive kube-apiserver's reading of an extra
 * key: not '%', which it unescapes, and not A-Z, which it lower-cases first.
 */
const LEGAL_KEY_BYTE = /^[!#$&'*+\-.^_`|~0-9a-z]$/;

/**
 * Percent-encodes an extra key byte by byte, as client-go does, and upper-case
 * letters too: kube-apiserver lower-cases the header's key and then
 * path-unescapes it, so `example.com/Team` travels as `example.com%2F%54eam`
 * (`%54` → `%54` lower-cased → `T`).
 */
export function encodeExtraKey(key: string): string {
  let out = '';
  for (const byte of Buffer.from(key, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += LEGAL_KEY_BYTE.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * What Go's net/http changes or refuses in a header value (net/textproto
 * reader.go): spaces and tabs at either end are trimmed away, and any other
 * control byte or DEL makes the request a 400. A tab inside is delivered.
 */
// eslint-disable-next-line no-control-regex -- the control bytes Go refuses are what this matches
const ALTERED_BY_GO = /^[ \t]|[ \t]$|[\u0000-\u0008\u000a-\u001f\u007f]/;

/** A lone surrogate has no UTF-8 form: Buffer.from would write U+FFFD, another string. */
const LONE_SURROGATE = /\p{Cs}/u;

const arrivesIntact = (value: string): boolean => !ALTERED_BY_GO.test(value) && !LONE_SURROGATE.test(value);

/**
 * Header values travel as bytes; Go reads them as UTF-8. Node and undici write
 * header strings as latin1, so hand them the UTF-8 bytes one char per byte.
 */
const asHeaderBytes = (value: string): string =>
  // eslint-disable-next-line no-control-regex -- the whole ASCII range, NUL included
  /^[\x00-\x7f]*$/.test(value) ? value : Buffer.from(value, 'utf8').toString('latin1');

export type IdentityHeaderLines = { ok: true; lines: string[] } | { ok: false; field: string };

/**
 * The identity's header lines as a flat [name, value, …] list, or the first
 * field kube-apiserver could not read back exactly. The first configured name
 * of each header is the one we set; all are stripped (see request-headers.ts).
 */
export function identityHeaderLines(identity: Identity, names: IdentityHeadersConfig): IdentityHeaderLines {
  const lines: string[] = [];
  // kube-apiserver skips an empty user, uid or group value; an empty extra value it keeps.
  const add = (name: string, value: string, mayBeEmpty = false): boolean => {
    if ((value === '' && !mayBeEmpty) || !arrivesIntact(value)) return false;
    lines.push(name, asHeaderBytes(value));
    return true;
  };
  const refuse = (field: string): IdentityHeaderLines => ({ ok: false, field });

  if (!add(names.user[0], identity.username)) return refuse('username');
  // An empty uid means no uid, here as in kube-apiserver.
  if (identity.uid && !add(names.uid[0], identity.uid)) return refuse('uid');
  // One header line per group: kube-apiserver never splits a value on commas.
  for (const group of identity.groups) {
    if (!add(names.group[0], group)) return refuse('groups');
  }
  for (const [key, values] of Object.entries(identity.extra)) {
    // A key without values would not arrive at all.
    if (values.length === 0 || LONE_SURROGATE.test(key)) return refuse(`extra[${key}]`);
    const name = names.extraPrefix[0] + encodeExtraKey(key);
    for (const value of values) {
      if (!add(name, value, true)) return refuse(`extra[${key}]`);
    }
  }
  return { ok: true, lines };
}

/**
 * The identity as oauth2-proxy hands it to web applications (its
 * `--pass-user-headers` set), for `upstream.identity: application`:
 * X-Forwarded-User (the user name), -Email and -Preferred-Username (from the
 * verified token's claims, when it has them as strings), -Groups (joined with
 * commas, as oauth2-proxy does: so a group with a comma in it is refused, not
 * split into two), and -Access-Token when asked.
 */
export function applicationHeaderLines(identity: Identity, accessToken?: string): IdentityHeaderLines {
  const claims = identity.claims ?? {};
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  // oauth2-proxy joins groups with commas: one with a comma in it would read as two.
  const groupsJoinable = identity.groups.every((g) => g !== '' && !g.includes(','));
  const fields: Array<[name: string, field: string, value: string | undefined]> = [
    ['X-Forwarded-User', 'username', identity.username || undefined],
    // An address the provider says it has not verified is anyone's to type in: not sent.
    ['X-Forwarded-Email', 'email', claims.email_verified === false || claims.email_verified === 'false' ? undefined : text(claims.email)],
    ['X-Forwarded-Groups', 'groups', groupsJoinable ? text(identity.groups.join(',')) : ','],
    ['X-Forwarded-Preferred-Username', 'preferred_username', text(claims.preferred_username)],
    ['X-Forwarded-Access-Token', 'access token', accessToken],
  ];
  if (!identity.username) return { ok: false, field: 'username' };
  const lines: string[] = [];
  for (const [name, field, value] of fields) {
    if (value === undefined) continue;
    if ((field === 'groups' && !groupsJoinable) || !arrivesIntact(value)) return { ok: false, field };
    lines.push(name, asHeaderBytes(value));
  }
  return { ok: true, lines };
}
