/**
 * The proxy's own HTML: the login error page, the sign-out pages and the
 * kubeconfig page. No inline script or style, so the Content-Security-Policy
 * can forbid both.
 */
import type { Identity } from '../request/identity.js';

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function layout(prefix: string, title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><link rel="stylesheet" href="${prefix}/static/page.css"></head>
<body><main><h1>${escapeHtml(title)}</h1>
${body}
</main><script src="${prefix}/static/page.js"></script></body></html>`;
}

const signInAgain = (prefix: string) => `<p><a href="${prefix}/start">Sign in again</a></p>`;
/** Sign-out changes state, so it is a form POST (same origin, as the CSP's form-action allows). */
const signOutForm = (prefix: string) => `<form method="post" action="${prefix}/sign_out"><button type="submit">Sign out</button></form>`;

export function errorPage(prefix: string, message: string): string {
  return layout(prefix, 'Sign-in failed', `<p>${escapeHtml(message)}</p>${signInAgain(prefix)}`);
}

/** What GET <prefix>/sign_out shows: a button, since a GET must not sign anyone out. */
export function signOutPage(prefix: string): string {
  return layout(prefix, 'Sign out', `<p>Sign out of this site?</p>${signOutForm(prefix)}`);
}

/** A sign-out POST that did not come from our own origin. */
export function signOutRefusedPage(prefix: string): string {
  return layout(prefix, 'Not signed out', `<p>A sign-out must be asked for from this site. To sign out, use this button:</p>${signOutForm(prefix)}`);
}

export function signedOutPage(prefix: string): string {
  return layout(prefix, 'Signed out', `<p>You are signed out.</p>${signInAgain(prefix)}`);
}

/**
 * A signed-in person a route's rule refuses: who they are signed in as, and
 * how to be someone else (sign out here, then sign in with another account).
 */
export function forbiddenPage(prefix: string, identity: Identity, route: string | undefined): string {
  const groups = identity.groups.length ? identity.groups.map(escapeHtml).join(', ') : 'none';
  const where = route ? `<strong>${escapeHtml(route)}</strong>` : 'this page';
  return layout(
    prefix,
    'Not allowed here',
    `<p>You are signed in as <strong>${escapeHtml(identity.username)}</strong> (groups: ${groups}), and ${where} does not let that account in.</p>` +
      `<p>If you have another account that may, sign out and sign in with it:</p>${signOutForm(prefix)}`,
  );
}

export interface KubeconfigView {
  readonly identity: Identity;
  readonly tokenKubeconfig: string;
  readonly kubeloginKubeconfig?: string;
  readonly expiresAt: Date;
}

export function kubeconfigPage(prefix: string, view: KubeconfigView): string {
  const { identity } = view;
  const groups = identity.groups.map((g) => `<li><code>${escapeHtml(g)}</code></li>`).join('');
  const block = (id: string, text: string) =>
    `<pre id="${id}">${escapeHtml(text)}</pre><button type="button" data-copy="${id}">Copy</button>`;
  const kubelogin = view.kubeloginKubeconfig
    ? `<h2>Stay logged in with kubelogin</h2>
<p>With <a href="https://github.com/int128/kubelogin">int128/kubelogin</a> installed (<code>kubectl krew install oidc-login</code>), this kubeconfig logs you in through the browser and refreshes by itself:</p>
${block('kubelogin', view.kubeloginKubeconfig)}
<p><a href="${prefix}/kubeconfig?download=kubelogin" download="kubeconfig">Download</a></p>`
    : '';
  return layout(
    prefix,
    'Your kubeconfig',
    `<section id="identity"><p>Signed in as <strong id="username">${escapeHtml(identity.username)}</strong></p>
<p>Groups:</p><ul id="groups">${groups}</ul></section>
<h2>A kubeconfig with your current token</h2>
<p>Valid until ${escapeHtml(view.expiresAt.toISOString())}; come back for a new one after that.</p>
${block('token', view.tokenKubeconfig)}
<p><a href="${prefix}/kubeconfig?download=token" download="kubeconfig">Download</a></p>
<p>Then: <code>export KUBECONFIG=~/Downloads/kubeconfig; kubectl auth whoami</code></p>
${kubelogin}
${signOutForm(prefix)}`,
  );
}

export const PAGE_CSS = `body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
pre{background:#f4f4f4;padding:1rem;overflow-x:auto;font-size:.85rem}button{margin:.25rem 0}`;

export const PAGE_JS = `document.querySelectorAll('button[data-copy]').forEach(function (b) {
  b.addEventListener('click', function () {
    navigator.clipboard.writeText(document.getElementById(b.dataset.copy).textContent).then(function () { b.textContent = 'Copied'; });
  });
});`;
