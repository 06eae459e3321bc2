/**
 * Audit lines. `combined` is exactly nginx's combined format, with
 * $remote_user = the authenticated user name, followed by key=value fields;
 * `json` carries the same facts. Nothing here can hold a credential: the
 * record is built from the context, which never stores one.
 */
import type { RequestContext } from '../request/context.js';
import { elapsedSeconds } from '../request/context.js';

export interface AuditRecord {
  time: string;
  requestId: string;
  remoteAddr: string;
  user: string | null;
  uid: string | null;
  groups: readonly string[];
  authMethod: string | null;
  method: string;
  target: string;
  protocol: string;
  status: number;
  upstreamStatus: number | null;
  bytesSent: number;
  requestTime: number;
  kind: string;
  referer: string | null;
  userAgent: string | null;
  rejectReason: string | null;
  error: string | null;
  /** The user the caller asked to act as (Impersonate-User), when it was forwarded. */
  impersonatedUser: string | null;
  /** The gateway route (routes[].name), when routes are configured. */
  route: string | null;
  /** The part of the route's rule that refused the caller. */
  rule: string | null;
}

/** Query parameters whose values are credentials (the login callback's code, a token in a URL). */
const SECRET_PARAMS = /([?&](?:code|state|session_state|access_token|id_token|refresh_token|token|logout_token)=)[^&#]*/gi;

/** The request target with credential-carrying query values replaced, so no log can hold them. */
export function redactTarget(target: string): string {
  return target.includes('?') ? target.replace(SECRET_PARAMS, '$1[redacted]') : target;
}

export function auditRecord(ctx: RequestContext): AuditRecord {
  return {
    time: ctx.startedAt.toISOString(),
    requestId: ctx.id,
    remoteAddr: ctx.clientAddress,
    user: ctx.identity?.username ?? null,
    uid: ctx.identity?.uid ?? null,
    groups: ctx.identity?.groups ?? [],
    authMethod: ctx.authMethod ?? null,
    method: ctx.method,
    target: redactTarget(ctx.target),
    protocol: `HTTP/${ctx.httpVersion}`,
    status: ctx.status ?? 0,
    upstreamStatus: ctx.upstreamStatus ?? null,
    bytesSent: ctx.bytesSent,
    requestTime: Math.round(elapsedSeconds(ctx) * 1000) / 1000,
    kind: ctx.kind,
    referer: ctx.referer ?? null,
    userAgent: ctx.userAgent ?? null,
    rejectReason: ctx.rejectReason ?? null,
    error: ctx.errorCode ?? null,
    impersonatedUser: ctx.impersonatedUser ?? null,
    route: ctx.route ?? null,
    rule: ctx.rule ?? null,
  };
}

/**
 * nginx's default variable escaping: '"', '\' and bytes outside printable
 * ASCII become \xHH. We also escape the space in unquoted fields, and the
 * comma inside a group name, so that every line splits unambiguously.
 */
/** Printable ASCII without '"' or '\\': the usual case, which needs no escaping. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function escape(value: string, extra?: RegExp): string {
  if (PLAIN.test(value) && !(extra && extra.test(value))) return value;
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    const plain = byte >= 0x20 && byte < 0x7f && ch !== '"' && ch !== '\\' && !(extra && extra.test(ch));
    out += plain ? ch : `\\x${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** nginx $time_local, in UTC: 23/Nov/2026:08:57:42 +0000 */
export function timeLocal(date: Date): string {
  return (
    `${pad(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`
  );
}

const orDash = (v: string | number | null) => (v === null || v === '' ? '-' : String(v));

export function formatCombined(r: AuditRecord, now: Date = new Date()): string {
  const user = r.user === null ? '-' : escape(r.user, / /);
  const request = escape(`${r.method} ${r.target} ${r.protocol}`);
  const groups = r.groups.map((g) => escape(g, /,/)).join(',');
  return (
    `${r.remoteAddr} - ${user} [${timeLocal(now)}] "${request}" ${r.status} ${r.bytesSent} ` +
    `"${escape(orDash(r.referer))}" "${escape(orDash(r.userAgent))}" ` +
    `rt=${r.requestTime.toFixed(3)} ust=${orDash(r.upstreamStatus)} kind=${r.kind} auth=${orDash(r.authMethod)} ` +
    `groups="${groups}" rid=${r.requestId} reason=${orDash(r.rejectReason ?? r.error)}` +
    (r.impersonatedUser === null ? '' : ` as="${escape(r.impersonatedUser)}"`) +
    (r.route === null ? '' : ` route=${r.route}`) +
    (r.rule === null ? '' : ` rule=${escape(r.rule, / /)}`)
  );
}

export function formatJson(r: AuditRecord): string {
  return JSON.stringify(r);
}
