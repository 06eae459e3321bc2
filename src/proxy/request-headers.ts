/**
 * The one function that decides what the upstream sees of a client's headers:
 * strip first, then inject. Read it top to bottom; every rule is here.
 */
import type { Identity } from '../request/identity.js';
import type { IdentityHeadersConfig } from '../config/schema.js';
import { BEARER_PROTOCOL_PREFIX } from '../authn/websocket-protocol.js';
import { foldName } from './header-names.js';
import { connectionListed, isHopByHop } from './hop-by-hop.js';
import { applicationHeaderLines, identityHeaderLines } from './identity-headers.js';

/** Headers the proxy replaces with its own: undici sets Host; Audit-ID is our request id. */
const REPLACED = new Set(['host', 'authorization', 'audit-id']);

/**
 * Expect: Node's server has already met `100-continue` (it answers the client's
 * 100 itself) and refuses other expectations with 417, and undici cannot send an
 * Expect header at all: forwarded, it turned every such upload into a 502.
 */
const MET_BY_THE_PROXY = 'expect';

/**
 * Headers by which a proxy in front states the client's address, scheme, host
 * or path, besides every `X-Forwarded-*`. Only the proxy states these facts
 * (X-Forwarded-For/-Proto/-Host); docs/architecture.md "Forwarding headers" says
 * who reads each one.
 */
const FORWARDING = new Set([
  'forwarded',
  'x-forwarded',
  'forwarded-for',
  'x-real-ip',
  'x-client-ip',
  'client-ip',
  'true-client-ip',
  'x-cluster-client-ip',
  'cf-connecting-ip',
  'cf-pseudo-ipv4',
  'fastly-client-ip',
  'x-0-client-ip',
  'x-appengine-user-ip',
  'x-original-forwarded-for',
  'x-original-url',
  'x-original-uri',
  'x-rewrite-url',
  'x-original-host',
  'x-host',
]);
const FORWARDING_PREFIX = 'x-forwarded-';

/**
 * What the proxy's forward-auth answer tells an ingress (X-Auth-Request-User,
 * -Email, -Groups…), which nginx copies onto the request it sends on: a client
 * sending them itself must not reach an application that reads them.
 */
const FORWARD_AUTH_PREFIX = 'x-auth-request-';

/**
 * Method overrides (Rails, Express method-override, ASP.NET, Google APIs): an
 * application behind the gateway that honours one would act on another method
 * than the one the proxy judged, e.g. a cookie GET (safe, so no Origin check)
 * that the application runs as a DELETE.
 */
const METHOD_OVERRIDES = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);

const IMPERSONATE_PREFIX = 'impersonate-';

/**
 * The identity as kube-apiserver's impersonation filter reads it
 * (k8s.io/api authentication/v1 Impersonate*Header): the same one line per
 * group and the same extra-key escaping as requestheader.
 */
const IMPERSONATION_HEADERS: IdentityHeadersConfig = {
  user: ['Impersonate-User'],
  group: ['Impersonate-Group'],
  uid: ['Impersonate-Uid'],
  extraPrefix: ['Impersonate-Extra-'],
};

/** How the identity reaches the upstream (upstream.identity). */
export type IdentityMode = 'requestheader' | 'impersonation' | 'application';

/** Precomputed from config once: which names are identity headers, which cookies are ours. */
export interface HeaderRules {
  readonly mode: IdentityMode;
  readonly identityHeaders: IdentityHeadersConfig;
  /** requestheader: forward the client's Impersonate-*; impersonation: honour them once authorized (pipeline). */
  readonly allowImpersonation: boolean;
  /** identity: application: also send the caller's access token (upstream.passAccessToken). */
  readonly passAccessToken: boolean;
  /** Folded user, group and uid header names (every configured alias). */
  readonly identityNames: ReadonlySet<string>;
  /** Folded extra prefixes. */
  readonly extraPrefixes: readonly string[];
  /** The proxy's session cookie, if browser login is configured. */
  readonly sessionCookie: string | undefined;
  /**
   * Whether a cookie name is one of the proxy's own (the session and login-state
   * cookies): removed from Cookie before forwarding, and from the upstream's
   * Set-Cookie lines before they reach the browser (response-headers.ts).
   */
  readonly ownsCookie: (name: string) => boolean;
  /**
   * A public route: nobody is named, and the client's own credential
   * (Authorization, the bearer subprotocol) is not handed to an application
   * that anyone may reach, where it could be replayed.
   */
  readonly dropClientCredential?: boolean;
}

/**
 * The header rules for a configuration.
 *
 * @param ownsCookie - the login's own test (`Login.ownsCookie`); without it, only `sessionCookie` is ours
 * @param mode - upstream.identity
 */
export function headerRules(
  identityHeaders: IdentityHeadersConfig,
  allowImpersonation: boolean,
  sessionCookie?: string,
  ownsCookie?: (name: string) => boolean,
  mode: IdentityMode = 'requestheader',
): HeaderRules {
  const fold = (names: readonly string[]) => names.map(foldName);
  return {
    mode,
    passAccessToken: false,
    identityHeaders,
    allowImpersonation,
    identityNames: new Set([...fold(identityHeaders.user), ...fold(identityHeaders.group), ...fold(identityHeaders.uid)]),
    extraPrefixes: fold(identityHeaders.extraPrefix),
    sessionCookie,
    ownsCookie: ownsCookie ?? ((name) => name === sessionCookie),
  };
}

/** True when the client sent any Impersonate-* header, in any casing and with `_` for `-`. */
export function hasImpersonationHeaders(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (foldName(rawHeaders[i]).startsWith(IMPERSONATE_PREFIX)) return true;
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
  /** The caller's access token, for identity: application with passAccessToken. */
  readonly accessToken?: string;
}

export type UpstreamHeaders =
  | { ok: true; headers: string[] }
  | { ok: false; problem: 'identity_not_representable'; field: string };

/**
 * Builds the upstream request's header lines as a flat [name, value, ...] list
 * (undici's raw form, which keeps one line per value). Names are compared
 * folded (lower case, `_` as `-`):
 *
 * 1. drop hop-by-hop headers, every header named in Connection, and Expect;
 * 2. drop Authorization, Host, Audit-ID, every forwarding header and every
 *    X-Auth-Request-* (a forward-auth answer's): ours replace them;
 * 3. drop every identity header and extra-prefixed header;
 * 4. drop Impersonate-* unless impersonation is allowed (callers refuse the
 *    request with 403 before this when it is not; dropping is the backstop),
 *    and even then every spelling but the dashed one; in impersonation mode
 *    drop them all: the proxy's own Impersonate-* lines are the identity;
 * 5. drop HTTP/2 pseudo-headers (:method, :path, :authority, :scheme);
 * 6. join Cookie lines into one, without our own cookies: HTTP/2 clients
 *    may split cookies over several lines, HTTP/1.1 allows one (RFC 9113 §8.2.3);
 * 7. remove the bearer token entry from Sec-WebSocket-Protocol (kube-apiserver
 *    does the same once it has read it);
 * 8. add X-Forwarded-For/-Proto/-Host, Audit-ID, Upgrade, then the identity
 *    (requestheader: the identityHeaders; impersonation: Impersonate-*, which
 *    the caller follows with the proxy's own credential; application:
 *    oauth2-proxy's X-Forwarded-User/-Email/-Groups/-Preferred-Username).
 *
 * Without an identity (a token passed through for kube-apiserver to decide) the
 * client's own credential stays: Authorization and the bearer subprotocol are
 * kept, and no identity header is added (the client's are still dropped); on a
 * public route (dropClientCredential) the credential is dropped too.
 */
export function upstreamHeaders(
  rawHeaders: readonly string[],
  identity: Identity | undefined,
  facts: ForwardedFacts,
  rules: HeaderRules,
): UpstreamHeaders {
  const listed = connectionListed(rawHeaders);
  const out: string[] = [];
  const cookies: string[] = [];
  let authorizationKept = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    const value = rawHeaders[i + 1];
    const folded = foldName(name);
    if (name.startsWith(':') || isHopByHop(folded, listed) || folded === MET_BY_THE_PROXY) continue;
    if (folded === 'authorization' && identity === undefined && !rules.dropClientCredential) {
      // Only the line the proxy read (Node keeps the first), so nothing further on can pick another.
      if (!authorizationKept) out.push(name, value);
      authorizationKept = true;
      continue;
    }
    if (REPLACED.has(folded) || FORWARDING.has(folded) || folded.startsWith(FORWARDING_PREFIX) || folded.startsWith(FORWARD_AUTH_PREFIX) || METHOD_OVERRIDES.has(folded)) continue;
    if (rules.identityNames.has(folded) || rules.extraPrefixes.some((p) => folded.startsWith(p))) continue;
    if (folded.startsWith(IMPERSONATE_PREFIX) && (!rules.allowImpersonation || name.includes('_') || (identity !== undefined && rules.mode === 'impersonation'))) continue;
    if (folded === 'cookie') {
      const rest = withoutCookies(value, rules.ownsCookie);
      if (rest) cookies.push(rest);
      continue;
    }
    if (folded === 'sec-websocket-protocol') {
      const rest = identity === undefined && !rules.dropClientCredential ? value : withoutBearerSubprotocol(value);
      if (rest) out.push(name, rest);
      continue;
    }
    out.push(name, value);
  }
  if (cookies.length) out.push('Cookie', cookies.join('; '));

  // The client's address alone: a chain the client sent is not evidence of anything.
  out.push('X-Forwarded-For', facts.clientAddress, 'X-Forwarded-Proto', facts.proto);
  if (facts.host) out.push('X-Forwarded-Host', facts.host);
  out.push('Audit-ID', facts.requestId);
  if (facts.upgrade) out.push('Connection', 'Upgrade', 'Upgrade', facts.upgrade);

  if (identity === undefined) return { ok: true, headers: out };
  const identityLines =
    rules.mode === 'application'
      ? applicationHeaderLines(identity, rules.passAccessToken ? facts.accessToken : undefined)
      : identityHeaderLines(identity, rules.mode === 'impersonation' ? IMPERSONATION_HEADERS : rules.identityHeaders);
  if (!identityLines.ok) return { ok: false, problem: 'identity_not_representable', field: identityLines.field };
  out.push(...identityLines.lines);
  return { ok: true, headers: out };
}

/** A Cookie header without the cookies `owned` names (every occurrence of them). */
function withoutCookies(header: string, owned: (name: string) => boolean): string {
  return header
    .split(';')
    .map((pair) => pair.trim())
    .filter((pair) => {
      const eq = pair.indexOf('=');
      return pair !== '' && !owned(eq < 0 ? pair : pair.slice(0, eq).trimEnd());
    })
    .join('; ');
}

/**
 * A Sec-WebSocket-Protocol line without bearer token entries (in any case, so
 * nothing token-like slips through); the other entries keep their order.
 * Empty when none is left.
 */
function withoutBearerSubprotocol(header: string): string {
  return header
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '' && !entry.toLowerCase().startsWith(BEARER_PROTOCOL_PREFIX))
    .join(', ');
}
