/**
 * The dev issuer's own interaction pages: a plain username + password form
 * (usable from a real browser and from the headless login client alike) and
 * an automatic consent, since every client of the dev issuer is ours.
 *
 * oidc-provider's devInteractions would accept any password and print a
 * warning on every start; a real check lets tests prove a wrong password fails.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';

/** A user the dev issuer can log in. */
export interface DevUser {
  /** What the login form's username field must hold. */
  readonly login: string;
  readonly password: string;
  /**
   * The user's claims, `sub` required. Claims of the `email`, `profile` and
   * `groups` scopes are released with those scopes; any other claim is
   * released with `openid`, so tests can put arbitrary claims in id_tokens.
   */
  readonly claims: { readonly sub: string; readonly [claim: string]: unknown };
}

const MAX_FORM_BYTES = 16 * 1024;

/** Escapes text for HTML content and attribute values. */
export const html = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** Compares digests, so the comparison takes the same time whatever the guess. */
const sameSecret = (a: string, b: string) =>
  timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());

/** A small HTML page; `body` must already be HTML-safe. */
export function pageHtml(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${html(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>${html(title)}</h1>
${body}
</main></body></html>`;
}

function htmlPage(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // No form-action: browsers apply it to the redirects after the form is
    // posted, and those end at the client's redirect URI on another origin.
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  });
  res.end(pageHtml(title, body));
}

function loginForm(res: ServerResponse, uid: string, clientId: string, error?: string): void {
  htmlPage(
    res,
    error ? 401 : 200,
    'Sign in to the dev issuer',
    `<p>Client: <code>${html(clientId)}</code></p>
${error ? `<p role="alert">${html(error)}</p>` : ''}
<form method="post" action="/interaction/${encodeURIComponent(uid)}/login" autocomplete="off">
<label>Username <input name="login" autofocus required></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit">Sign in</button>
</form>`,
  );
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Grants everything the client asked for: consent is implied for the dev issuer's own clients. */
async function autoConsent(provider: Provider, details: Awaited<ReturnType<Provider['interactionDetails']>>): Promise<InteractionResults> {
  const { session, params, prompt } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session?.accountId, clientId: String(params.client_id) });
  if (!grant) throw new Error('grant not found');
  const missing = prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return { consent: { grantId: await grant.save() } };
}

/**
 * Serves `GET /interaction/:uid` and `POST /interaction/:uid/login`. Returns
 * false when the request is not an interaction route, so the caller hands it
 * to the provider.
 */
export function interactionRoutes(
  provider: Provider,
  users: ReadonlyMap<string, DevUser>,
): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    const path = new URL(req.url ?? '/', 'https://issuer.invalid').pathname;
    const match = /^\/interaction\/([^/]+)(\/login)?$/.exec(path);
    if (!match) return false;
    const isLogin = match[2] !== undefined;
    if (req.method !== (isLogin ? 'POST' : 'GET')) {
      htmlPage(res, 405, 'Method not allowed', '');
      return true;
    }
    const details = await provider.interactionDetails(req, res).catch(() => undefined);
    // Expired, finished, opened without the interaction cookie, or another attempt's page.
    if (!details || details.uid !== match[1]) {
      htmlPage(res, 400, 'This sign-in attempt has expired', '<p>Start again from the application.</p>');
      return true;
    }
    const clientId = String(details.params.client_id);
    if (details.prompt.name === 'consent') {
      await provider.interactionFinished(req, res, await autoConsent(provider, details), { mergeWithLastSubmission: true });
      return true;
    }
    if (!isLogin) {
      loginForm(res, details.uid, clientId);
      return true;
    }
    const form = await readForm(req);
    const user = users.get(form.get('login') ?? '');
    if (!user || !sameSecret(form.get('password') ?? '', user.password)) {
      loginForm(res, details.uid, clientId, 'Wrong username or password.');
      return true;
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.claims.sub } }, { mergeWithLastSubmission: false });
    return true;
  };
}
