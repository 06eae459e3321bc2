/**
 * A headless user for the dev issuer: runs the authorization-code + PKCE flow
 * the way a browser and kubelogin would, and returns real tokens. The quick
 * start and the tests get their id_tokens this way rather than minting them.
 */
import * as oidc from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';

/** How to log in. */
export interface LoginOptions {
  readonly issuerURL: string;
  /** PEM CA certificate(s) trusted for the issuer's HTTPS. */
  readonly ca: string;
  readonly clientId: string;
  /** For a confidential client (sent with client_secret_basic); omit for a public one. */
  readonly clientSecret?: string;
  /** Must be registered for the client; it is never connected to: the code is taken from the redirect. */
  readonly redirectURI: string;
  readonly username: string;
  readonly password: string;
  /** Default: openid email profile groups offline_access. */
  readonly scopes?: readonly string[];
}

/** The tokens of one login. */
export interface LoginResult {
  readonly idToken: string;
  /** Present when offline_access was granted. */
  readonly refreshToken?: string;
  readonly accessToken: string;
  /** The id_token's `exp`: seconds since the epoch. */
  readonly expiresAt: number;
}

const DEFAULT_SCOPES = ['openid', 'email', 'profile', 'groups', 'offline_access'];
/** Enough for authorize → login → resume → consent → resume, with room to spare. */
const MAX_STEPS = 20;

/** Cookies by name and path; the dev issuer sets per-interaction cookies on distinct paths. */
class CookieJar {
  readonly #cookies = new Map<string, { name: string; value: string; path: string }>();

  store(setCookies: readonly string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = value === '';
      for (const attr of attrs) {
        const [k = '', v = ''] = attr.split('=').map((s) => s.trim());
        if (/^path$/i.test(k)) path = v || '/';
        if (/^max-age$/i.test(k) && Number(v) <= 0) expired = true;
        if (/^expires$/i.test(k) && Date.parse(v) <= Date.now()) expired = true;
      }
      const key = `${name};${path}`;
      if (expired) this.#cookies.delete(key);
      else this.#cookies.set(key, { name, value, path });
    }
  }

  header(url: URL): string | undefined {
    const matching = [...this.#cookies.values()].filter(
      (c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`),
    );
    return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }
}

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", apos: "'" };
const unescapeHtml = (s: string) => s.replace(/&(amp|lt|gt|quot|#39|apos);/g, (_, e: string) => entities[e]);

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
  return m ? unescapeHtml(m[1] ?? m[2] ?? m[3] ?? '') : undefined;
}

/** Finds the page's login form and fills it in, keeping its hidden fields. */
function fillLoginForm(page: string, base: URL, username: string, password: string): { action: URL; body: URLSearchParams } | undefined {
  const form = /<form\b[^>]*>[\s\S]*?<\/form>/i.exec(page)?.[0];
  if (!form || !/type\s*=\s*["']?password/i.test(form)) return undefined;
  const body = new URLSearchParams();
  for (const input of form.match(/<input\b[^>]*>/gi) ?? []) {
    const name = attr(input, 'name');
    if (!name) continue;
    const type = attr(input, 'type')?.toLowerCase();
    if (type === 'password') body.set(name, password);
    else if (/^(login|username|user|email)$/i.test(name)) body.set(name, username);
    else body.set(name, attr(input, 'value') ?? '');
  }
  return { action: new URL(attr(form.slice(0, form.indexOf('>') + 1), 'action') ?? base.href, base), body };
}

const withoutQuery = (u: URL) => `${u.protocol}//${u.host}${u.pathname}`;

/**
 * Logs `username` in at the issuer with the authorization-code flow (PKCE,
 * state, nonce) and returns the tokens. Throws when the login is refused,
 * naming the step, never a token.
 */
export async function loginWithPassword(opts: LoginOptions): Promise<LoginResult> {
  const agent = new Agent({ connect: { ca: opts.ca } });
  // Redirects are never followed by fetch: the flow below walks them itself.
  const fetch = ((url: string | URL, init?: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher: agent, redirect: 'manual' })) as unknown as typeof globalThis.fetch;
  try {
    const config = await oidc.discovery(
      new URL(opts.issuerURL),
      opts.clientId,
      undefined,
      opts.clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(opts.clientSecret),
      { [oidc.customFetch]: fetch },
    );
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    // openid-client sends the token request's redirect_uri as a parsed URL
    // ("http://localhost:8000/"); the authorization request must spell it the same.
    const redirectURI = new URL(opts.redirectURI);
    let url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectURI.href,
      scope: (opts.scopes ?? DEFAULT_SCOPES).join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const redirectTarget = withoutQuery(redirectURI);
    const jar = new CookieJar();
    let request: { method: string; body?: URLSearchParams } = { method: 'GET' };

    for (let step = 0; step < MAX_STEPS; step++) {
      const headers: Record<string, string> = { accept: 'text/html' };
      const cookie = jar.header(url);
      if (cookie) headers.cookie = cookie;
      const res = await fetch(url, { method: request.method, headers, ...(request.body && { body: request.body }) });
      jar.store(res.headers.getSetCookie());
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        const next = new URL(location, url);
        if (withoutQuery(next) === redirectTarget) {
          const tokens = await oidc.authorizationCodeGrant(config, next, {
            pkceCodeVerifier: verifier,
            expectedState: state,
            expectedNonce: nonce,
          });
          const claims = tokens.claims();
          if (!tokens.id_token || !claims) throw new Error('login: the token response has no id_token');
          return {
            idToken: tokens.id_token,
            accessToken: tokens.access_token,
            expiresAt: claims.exp,
            ...(tokens.refresh_token !== undefined && { refreshToken: tokens.refresh_token }),
          };
        }
        url = next;
        request = { method: 'GET' };
        continue;
      }
      const page = await res.text();
      const form = res.ok ? fillLoginForm(page, url, opts.username, opts.password) : undefined;
      if (!form || request.body) {
        // A login form again after we posted one means the credentials were refused.
        throw new Error(`login failed at ${url.origin}${url.pathname}: HTTP ${res.status}${request.body ? ' after submitting the login form' : ''}`);
      }
      url = form.action;
      request = { method: 'POST', body: form.body };
    }
    throw new Error(`login: more than ${MAX_STEPS} redirects`);
  } finally {
    await agent.close();
  }
}
