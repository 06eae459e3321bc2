import type { Test } from 'tap';
import type { BrowserContext } from 'playwright-core';
import { browserLogin, launchBrowser, newContext, SESSION_COOKIE } from './browser.js';
import { startStack, untilReady, type Stack } from './stack.js';

/**
 * What a workload behind pods/…/proxy could serve on the proxy's own origin: a
 * page whose script plants a ConfigMap with whatever credentials the browser
 * attaches (kubernetes/kubernetes#10351). Shared by the tests that must see it refused.
 */
export const USER = 'demo@example.com';
export const CONFIGMAPS = '/api/v1/namespaces/default/configmaps';

export const WORKLOAD_PAGE = `<!doctype html><title>a workload</title><script>
  window.outcome = fetch(${JSON.stringify(CONFIGMAPS)}, {
    method: 'POST',
    credentials: 'include',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'planted' }, data: { by: 'a pod' } }),
  }).then((r) => 'status ' + r.status, (e) => 'failed ' + e);
</script>`;

export interface SignedInVictim {
  readonly stack: Stack;
  readonly proxy: string;
  /** The proxy's origin, which a same-origin page's requests carry. */
  readonly own: string;
  /** A Chromium context signed in at the proxy. */
  readonly context: BrowserContext;
  /** The victim's session cookie as a raw request line. */
  readonly session: string[];
}

/** A login-enabled stack whose dev upstream serves WORKLOAD_PAGE on every proxy subresource, and a signed-in browser. */
export async function signedInVictim(t: Test): Promise<SignedInVictim> {
  const stack = await startStack(t, { login: { dir: t.testdir() } });
  await untilReady(stack.proxy);
  stack.upstream.serveProxiedPage(WORKLOAD_PAGE);
  const proxy = stack.proxy.url;
  const context = await newContext(await launchBrowser(t), t);
  const session = [`Cookie: ${SESSION_COOKIE}=${await browserLogin(context, proxy)}`];
  return { stack, proxy, own: new URL(proxy).origin, context, session };
}
