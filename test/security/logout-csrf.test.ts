// Attack class: logout cross-site request forgery (CWE-352), and HEAD requests running a
// GET handler's side effects. Sign-out used to be a GET (and a POST from anywhere): any
// page could sign a person out with <img src=".../oauth2/sign_out">, and a sibling
// subdomain's form could too (SameSite=Lax lets same-site POSTs carry the cookie).
// The router also ran the GET handler for HEAD on every route: a HEAD could start a
// login, consume a callback or sign out. Now sign-out is a POST from our own origin, a
// GET shows the button, and only side-effect-free routes answer HEAD.
import t from 'tap';
import { browserLogin, launchBrowser, newContext, startLoginByRequest } from '../helpers/browser.js';
import { startStack, untilReady, type FetchInit } from '../helpers/stack.js';

t.test('sign-out and HEAD', async (t) => {
  const stack = await startStack(t, { login: { dir: t.testdir() } });
  await untilReady(stack.proxy);
  const name = stack.config.authentication.session!.cookie.name;
  const origin = new URL(stack.proxy.url).origin;
  const browser = await launchBrowser(t);
  /** A session of its own for each case, so that one case signing out cannot hide another. */
  const signedIn = async () => `${name}=${await browserLogin(await newContext(browser, t), stack.proxy.url, name)}`;
  const call = async (path: string, init: FetchInit) => {
    const res = await stack.fetch(path, init);
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  };
  const stillSignedIn = async (cookie: string) => (await call('/debug/headers', { headers: { cookie, accept: 'application/json' } })).status === 200;
  const signOut = (cookie: string, headers: Record<string, string>) =>
    call('/oauth2/sign_out', { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: '' });

  await t.test('a GET shows a button and signs nobody out', async (t) => {
    const cookie = await signedIn();
    const res = await call('/oauth2/sign_out', { headers: { cookie, accept: 'text/html' } });
    t.equal(res.status, 200);
    t.match(res.body, /<form method="post" action="\/oauth2\/sign_out"><button type="submit">Sign out<\/button><\/form>/, 'a form that POSTs');
    t.match(String(res.headers['content-security-policy']), /form-action 'self'/, 'which the CSP allows');
    t.equal(res.headers['referrer-policy'], 'same-origin', 'and which a browser posts with our Origin (under no-referrer it would send Origin: null)');
    t.ok(await stillSignedIn(cookie), 'still signed in');
  });

  await t.test('a cross-origin POST is refused', async (t) => {
    const cookie = await signedIn();
    for (const [what, headers] of [
      ['another site', { origin: 'https://evil.example' }],
      ['a sibling subdomain', { origin: `https://evil.${new URL(origin).hostname}.nip.io` }],
      ['another port of this host', { origin: `https://${new URL(origin).hostname}:1` }],
      ['an opaque origin', { origin: 'null' }],
      ['a foreign Referer without Origin', { referer: 'https://evil.example/page' }],
      ['neither Origin nor Referer', {}],
    ] as const) {
      const res = await signOut(cookie, headers);
      t.equal(res.status, 403, what);
      t.match(res.body, /A sign-out must be asked for from this site/);
    }
    t.ok(await stillSignedIn(cookie), 'still signed in');
  });

  await t.test('HEAD runs nothing', async (t) => {
    const cookie = await signedIn();
    // A login started by a GET, so that a HEAD on its callback would have something to consume.
    const { loginCookie, callbackPath } = await startLoginByRequest(stack);
    const both = `${cookie}; ${loginCookie}`;

    for (const path of ['/oauth2/start', callbackPath, '/oauth2/userinfo', '/oauth2/kubeconfig', '/oauth2/backchannel_logout']) {
      const res = await call(path, { method: 'HEAD', headers: { cookie: both } });
      t.equal(res.status, 405, `HEAD ${path.split('?')[0]} is not answered`);
      t.notMatch(String(res.headers.allow), /HEAD/, 'and Allow does not offer it');
      t.notOk(res.headers['set-cookie'], 'no cookie set or cleared');
    }
    const head = await call('/oauth2/sign_out', { method: 'HEAD', headers: { cookie } });
    t.equal(head.status, 200, 'HEAD on the sign-out page is answered (it only shows a form)');
    t.equal(head.body, '', 'without a body');
    const css = await call('/oauth2/static/page.css', { method: 'HEAD' });
    t.equal(css.status, 200, 'as are the static files');
    t.ok(Number(css.headers['content-length']) > 0, 'with their length');

    t.ok(await stillSignedIn(cookie), 'still signed in');
    const callback = await call(callbackPath, { headers: { cookie: loginCookie! } });
    t.match(callback.body, /could not be verified/, 'and the login the HEAD saw is still there to finish');
  });

  await t.test('a same-origin POST signs out', async (t) => {
    const cookie = await signedIn();
    const res = await signOut(cookie, { origin });
    t.equal(res.status, 303, "sent on to the provider's logout");
    t.ok([res.headers['set-cookie'] ?? []].flat().some((line) => line.startsWith(`${name}=;`)), 'the cookie is cleared');
    t.notOk(await stillSignedIn(cookie), 'the session is over');
    const byReferer = await signedIn();
    t.equal((await signOut(byReferer, { referer: `${origin}/oauth2/kubeconfig` })).status, 303, 'a same-origin Referer without Origin is enough');
    t.notOk(await stillSignedIn(byReferer), 'that session is over too');
  });
});
