/**
 * A real headless Chromium (Debian's package, installed by .ci/run) driven by
 * playwright-core. The dev CA is not in Chromium's store, so the context
 * ignores certificate errors: the tests are about login, not TLS trust.
 * Also the start of a login as a browser makes it, for tests that need only its cookie.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { defaultSessionCookieName } from '../../src/config/session-schema.js';
import { LOGIN_STATE_COOKIE } from '../../src/login/login-state.js';
import type { Stack } from './stack.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The session cookie's name in the test stacks (no cookie.domain): `__Host-kfp-session`. */
export const SESSION_COOKIE = defaultSessionCookieName('');

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** `hostsTo127`: DNS names (`*.` patterns too) Chromium resolves to 127.0.0.1, for tests of several hosts. */
export async function launchBrowser(t: Teardown, hostsTo127: readonly string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM} (.ci/run installs Debian's chromium)`);
  const resolverRules = hostsTo127.length ? [`--host-resolver-rules=${hostsTo127.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`] : [];
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...resolverRules],
  });
  t.teardown(() => browser.close());
  return browser;
}

export async function newContext(browser: Browser, t: Teardown): Promise<BrowserContext> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  t.teardown(() => context.close());
  return context;
}

/** Fills the dev issuer's login form. */
export async function signInAtIssuer(page: import('playwright-core').Page, username = 'demo', password = 'demo'): Promise<void> {
  await page.fill('input[name=login]', username);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
}

/** Logs `context` in through the proxy's login with a real page; returns the session cookie value. */
export async function browserLogin(context: BrowserContext, proxyURL: string, cookieName = SESSION_COOKIE): Promise<string> {
  const page = await context.newPage();
  await page.goto(`${proxyURL}/oauth2/start?rd=/oauth2/userinfo`);
  await signInAtIssuer(page);
  await page.waitForURL(`${proxyURL}/oauth2/userinfo`);
  await page.close();
  const cookie = (await context.cookies()).find((c) => c.name === cookieName);
  if (!cookie) throw new Error('no session cookie after login');
  return cookie.value;
}

/** What GET /oauth2/start answered. */
export interface StartedLogin {
  readonly status: number;
  readonly setCookies: string[];
  /** `name=value` of the login-state cookie, when one was set. */
  readonly loginCookie: string | undefined;
  /** The state sent to the provider. */
  readonly state: string;
  /** The callback's path for this login, with a made-up code the provider will refuse. */
  readonly callbackPath: string;
}

/** Starts a login without a browser: GET /oauth2/start, as the proxy's redirect would. */
export async function startLoginByRequest(stack: Pick<Stack, 'fetch'>): Promise<StartedLogin> {
  const res = await stack.fetch('/oauth2/start');
  await res.body.dump();
  const setCookies = [res.headers['set-cookie'] ?? []].flat();
  const state = res.headers.location ? (new URL(String(res.headers.location)).searchParams.get('state') ?? '') : '';
  return {
    status: res.statusCode,
    setCookies,
    loginCookie: setCookies.map((line) => line.split(';')[0]).find((pair) => pair.startsWith(`${LOGIN_STATE_COOKIE}=`)),
    state,
    callbackPath: `/oauth2/callback?code=made-up&state=${encodeURIComponent(state)}`,
  };
}
