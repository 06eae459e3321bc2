/**
 * The one function that decides what the upstream sees of a client's headers:
 * strip first, then inject. Read it top to bottom; every rule is here.
 */
import type { Identity } from '../authn/identity.js';
import type { IdentityHeadersConfig } from '../config/schema.js';
import { identityHeaderLines } from './identity-headers.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1) and headers we always replace ourselves. */
const ALWAYS_DROPPED = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'host',
  'authorization',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'audit-id',
]);

const IMPERSONATE_PREFIX = 'impersonate-';

/** Precomputed from config once: which names are identity headers. */
export interface HeaderRules {
  readonly identityHeaders: IdentityHeadersConfig;
  readonly allowImpersonation: boolean;
  /** Lower-cased user, group and uid header names (every configured alias). */
  readonly identityNames: ReadonlySet<string>;
  /** Lower-cased extra prefixes. */
  readonly extraPrefixes: readonly string[];
  /** The proxy's session cookie, removed from Cookie before forwarding. */
  readonly sessionCookie: string | undefined;
}

export function headerRules(identityHeaders: IdentityHeadersConfig, allowImpersonation: boolean, sessionCookie?: string): HeaderRules {
  const lower = (names: readonly string[]) => names.map((n) => n.toLowerCase());
  return {
    identityHeaders,
    allowImpersonation,
    identityNames: new Set([...lower(identityHeaders.user), ...lower(identityHeaders.group), ...lower(identityHeaders.uid)]),
    extraPrefixes: lower(identityHeaders.extraPrefix),
    sessionCookie,
  };
}

/** True when the client sent any Impersonate-* header (in any casing). */
export function hasImpersonationHeaders(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase().startsWith(IMPERSONATE_PREFIX)) return true;
  }
  return false;
}

export interface ForwardedFacts {
  readonly requestId: string;
  readonly clientAddress: string;
  readonly host: string | undefined;
  readonly proto: 'https' | 'http';
  /** The client's Upgrade value, kept only on upgrade requests. */
  readonly upgrade?: string;
}

export type UpstreamHeaders =
  | { ok: true; headers: string[] }
  | { ok: false; problem: 'identity_not_representable'; field: string };

/**
 * Builds the upstream request's header lines as a flat [name, value, ...] list
 * (undici's raw form, which keeps one line per value).
 *
 * 1. drop hop-by-hop headers and every header named in Connection;
 * 2. drop Authorization, Host, X-Forwarded-*, Audit-ID: ours replace them;
 * 3. drop every identity header and extra-prefixed header, in any casing;
 * 4. drop Impersonate-* unless impersonation is allowed (callers refuse the
 *    request with 403 before this when it is not; dropping is the backstop);
 * 5. drop HTTP/2 pseudo-headers (:method, :path, :authority, :scheme);
 * 6. join Cookie lines into one, without our session cookie: HTTP/2 clients
 *    may split cookies over several lines, HTTP/1.1 allows one (RFC 9113 §8.2.3);
 * 7. add X-Forwarded-*, Audit-ID, Upgrade, then the identity.
 */
export function upstreamHeaders(
  rawHeaders: readonly string[],
  identity: Identity,
  facts: ForwardedFacts,
  rules: HeaderRules,
): UpstreamHeaders {
  const connectionListed = connectionTokens(rawHeaders);
  const out: string[] = [];
  const cookies: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (ALWAYS_DROPPED.has(lower) || connectionListed.has(lower) || lower.startsWith('proxy-') || lower.startsWith(':')) continue;
    if (rules.identityNames.has(lower) || rules.extraPrefixes.some((p) => lower.startsWith(p))) continue;
    if (!rules.allowImpersonation && lower.startsWith(IMPERSONATE_PREFIX)) continue;
    if (lower === 'cookie') {
      const rest = rules.sessionCookie ? withoutCookie(rawHeaders[i + 1]!, rules.sessionCookie) : rawHeaders[i + 1]!;
      if (rest) cookies.push(rest);
      continue;
    }
    out.push(name, rawHeaders[i + 1]!);
  }
  if (cookies.length) out.push('Cookie', cookies.join('; '));

  out.push('X-Forwarded-For', facts.clientAddress, 'X-Forwarded-Proto', facts.proto);
  if (facts.host) out.push('X-Forwarded-Host', facts.host);
  out.push('Audit-ID', facts.requestId);
  if (facts.upgrade) out.push('Connection', 'Upgrade', 'Upgrade', facts.upgrade);

  const identityLines = identityHeaderLines(identity, rules.identityHeaders);
  if (!identityLines.ok) return { ok: false, problem: 'identity_not_representable', field: identityLines.field };
  out.push(...identityLines.lines);
  return { ok: true, headers: out };
}

/** A Cookie header without the named cookie (every occurrence of it). */
function withoutCookie(header: string, name: string): string {
  return header
    .split(';')
    .map((pair) => pair.trim())
    .filter((pair) => {
      const eq = pair.indexOf('=');
      return pair !== '' && (eq < 0 ? pair : pair.slice(0, eq).trimEnd()) !== name;
    })
    .join('; ');
}

/** Lower-cased names listed in every Connection header line. */
function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'connection') continue;
    for (const token of rawHeaders[i + 1]!.split(',')) {
      const name = token.trim().toLowerCase();
      if (name) names.add(name);
    }
  }
  return names;
}
