/**
 * The pending login between /start and /callback (state, nonce, PKCE verifier,
 * where to return), kept in the browser instead of the session store, as
 * oauth2-proxy keeps its CSRF cookie: an anonymous visitor who starts a login
 * costs the server nothing, so a flood of /start can neither evict signed-in
 * people from the bounded memory store nor grow Redis.
 *
 * The cookie is a compact JWE (`dir`, `A256GCM`) under a key derived by HKDF
 * from the cookie secret. AES-GCM hides the verifier and nonce and
 * authenticates the whole: a changed byte, another secret's cookie or an
 * expired one does not open. Every cookie secret opens; the first seals
 * (rotation, as with the session cookie).
 *
 * Its name is `__Host-` prefixed: browsers refuse such a cookie with a Domain,
 * so a sibling subdomain cannot plant its own pending login on us (which would
 * log the victim in as the attacker at the callback). The prefix requires
 * Path=/, so the cookie cannot be limited to the callback's path; it lives ten
 * minutes and the callback clears it.
 */
import { hkdfSync, webcrypto } from 'node:crypto';
import { serialize } from 'cookie';
import { EncryptJWT, jwtDecrypt } from 'jose';
import { LRUCache } from 'lru-cache';
import { cookieValues } from './cookie-header.js';
import type { PendingLogin } from './oidc-client.js';

export const LOGIN_STATE_COOKIE = '__Host-kfp-login';

/** Long enough to sign in at the provider (a password manager, a second factor), short enough to go stale soon. */
export const LOGIN_STATE_LIFETIME_MS = 10 * 60_000;

/**
 * Browsers keep a cookie of at most 4096 bytes. The sealed fields take about
 * 500; a return target past 2 KiB (base64 grows it by a third) could push the
 * cookie over, and the browser would drop it silently. Such a login returns to "/".
 */
const MAX_RETURN_TO = 2048;

/** Callbacks remembered as consumed: each entry is only needed for the cookie's lifetime. */
const MAX_CONSUMED = 10_000;

const HKDF_INFO = 'kube-front-proxy login state (JWE dir A256GCM)';
const ALGORITHMS = { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] };

/** What a request's login-state cookie holds. */
export type OpenedLoginState =
  | { readonly kind: 'found'; readonly pending: PendingLogin }
  /** No login-state cookie. */
  | { readonly kind: 'missing' }
  /** More than one cookie by that name: refused, never resolved by order. */
  | { readonly kind: 'ambiguous' }
  /** Tampered, sealed with a secret we do not have, expired, or not a pending login. */
  | { readonly kind: 'invalid' };

export interface LoginState {
  readonly cookieName: string;
  /** The Set-Cookie line that holds `pending` for {@link LOGIN_STATE_LIFETIME_MS}. */
  seal(pending: PendingLogin): Promise<string>;
  /** The pending login the request carries. Never throws. */
  open(cookieHeader: string | undefined): Promise<OpenedLoginState>;
  /** The Set-Cookie line that removes the cookie. */
  readonly clear: string;
  /**
   * True the first time a login's `state` is consumed, false when it was
   * consumed before (a replayed callback, cookie and all). Kept in this
   * process for the cookie's lifetime, bounded; across replicas, and for
   * entries pushed out by a flood, the provider's one-time code is the backstop.
   */
  consume(state: string): boolean;
}

export interface LoginStateOptions {
  /** The cookie secrets: the first seals, every one opens. */
  readonly secrets: readonly string[];
  /** Epoch-ms clock; tests replace it. */
  readonly now?: () => number;
}

/**
 * The login-state cookie sealed with `secrets`.
 *
 * @example
 * const state = createLoginState({ secrets: ['…at least 32 bytes…'] });
 * res.setHeader('set-cookie', await state.seal(pending));
 * const opened = await state.open(req.headers.cookie); // { kind: 'found', pending }
 */
export function createLoginState(options: LoginStateOptions): LoginState {
  const now = options.now ?? Date.now;
  // Imported once: given raw bytes, jose would import the key again on every call.
  const keys = Promise.all(
    options.secrets.map((secret) => webcrypto.subtle.importKey('raw', hkdfSync('sha256', secret, '', HKDF_INFO, 32), 'AES-GCM', false, ['encrypt', 'decrypt'])),
  );
  const attributes = { path: '/', secure: true, httpOnly: true, sameSite: 'lax' } as const;
  const consumed = new LRUCache<string, true>({ max: MAX_CONSUMED, ttl: LOGIN_STATE_LIFETIME_MS, ttlAutopurge: false });

  const unseal = async (value: string): Promise<PendingLogin | undefined> => {
    for (const key of await keys) {
      try {
        const { payload } = await jwtDecrypt(value, key, { ...ALGORITHMS, currentDate: new Date(now()), requiredClaims: ['exp'] });
        return asPendingLogin(payload);
      } catch {
        // Not sealed with this key (or not valid at all): try the next one.
      }
    }
    return undefined;
  };

  return {
    cookieName: LOGIN_STATE_COOKIE,
    async seal(pending) {
      const seconds = Math.floor(now() / 1000);
      const returnTo = pending.returnTo.length > MAX_RETURN_TO ? '/' : pending.returnTo;
      const sealed = await new EncryptJWT({ state: pending.state, nonce: pending.nonce, codeVerifier: pending.codeVerifier, returnTo })
        .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
        .setIssuedAt(seconds)
        .setExpirationTime(seconds + LOGIN_STATE_LIFETIME_MS / 1000)
        .encrypt((await keys)[0]);
      return serialize(LOGIN_STATE_COOKIE, sealed, { ...attributes, maxAge: LOGIN_STATE_LIFETIME_MS / 1000 });
    },
    async open(cookieHeader) {
      const values = cookieValues(cookieHeader, LOGIN_STATE_COOKIE);
      if (values.length === 0) return { kind: 'missing' };
      if (values.length > 1) return { kind: 'ambiguous' };
      const pending = await unseal(values[0]);
      return pending ? { kind: 'found', pending } : { kind: 'invalid' };
    },
    clear: serialize(LOGIN_STATE_COOKIE, '', { ...attributes, maxAge: 0 }),
    consume(state) {
      if (consumed.has(state)) return false;
      consumed.set(state, true);
      return true;
    },
  };
}

function asPendingLogin(payload: Record<string, unknown>): PendingLogin | undefined {
  const { state, nonce, codeVerifier, returnTo } = payload;
  if (typeof state !== 'string' || typeof nonce !== 'string' || typeof codeVerifier !== 'string' || typeof returnTo !== 'string') return undefined;
  return { state, nonce, codeVerifier, returnTo };
}
