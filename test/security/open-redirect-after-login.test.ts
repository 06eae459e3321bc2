// Attack class: open redirect through the login's return target (CWE-601). The same
// class as oauth2-proxy's rd= advisories: CVE-2020-5233 (GHSA-qqxw-m5fj-f7gv),
// CVE-2020-11053 (GHSA-j7px-6hwj-hpjg), CVE-2020-4037 (GHSA-5m6c-jp6f-2vcv).
//
// safeRedirect() refuses a return target that starts with `//`, then resolves the
// rest against a placeholder origin and returns the resolved *path*. Resolving
// removes dot segments, and a path made of `/.` (or `/x/..`, `/%2e`) followed by
// `//evil.example` resolves to the path `//evil.example`: same origin for the
// placeholder, and a protocol-relative URL, i.e. another host, once it is sent as
// the callback's Location. A link to `/oauth2/start?rd=/.//evil.example/` on the
// proxy's own host therefore ends, after a real sign-in, at the attacker's site
// (phishing with the proxy's name on the link; with an implicit-flow or token-in-URL
// consumer on the way, token theft).
//
// Contract: after a login the browser stays on the proxy's origin (or an allow-listed
// host) whatever `rd` says.
import t from 'tap';
import { safeRedirect } from '../../src/login/redirect.js';
import { launchBrowser, newContext, signInAtIssuer } from '../helpers/browser.js';
import { freePort, startStack, untilReady } from '../helpers/stack.js';

/** Return targets that start with one `/` and resolve to `//evil.example/…`. */
const DOT_SEGMENT_FORMS = ['/.//evil.example/', '/..//evil.example/', '/x/..//evil.example/', '/%2e//evil.example/', '/./%2e//evil.example/'];

t.test('safeRedirect never returns a protocol-relative or absolute URL for another host', async (t) => {
  for (const rd of DOT_SEGMENT_FORMS) {
    const target = safeRedirect(rd, []);
    const landed = new URL(target, 'https://proxy.example');
    t.equal(landed.origin, 'https://proxy.example', `${JSON.stringify(rd)} → ${JSON.stringify(target)} stays on the proxy's origin`);
  }
});

t.test('a real sign-in that started from a crafted link', async (t) => {
  const stack = await startStack(t, { login: { dir: t.testdir() } });
  await untilReady(stack.proxy);
  const proxy = stack.proxy.url;
  const browser = await launchBrowser(t);
  // The attacker's site: another origin on loopback (nothing listens there; where the browser goes is what counts).
  const attacker = `127.0.0.1:${await freePort()}`;

  for (const rd of ['/.//evil.example/', '/x/..//evil.example/'].map((form) => form.replace('evil.example', attacker))) {
    t.test(rd, async (t) => {
      const context = await newContext(browser, t);
      const page = await context.newPage();
      // The attacker's site does not exist here: every request the browser makes elsewhere is recorded.
      const offsite: string[] = [];
      context.on('request', (request) => {
        const url = request.url();
        if (!url.startsWith(proxy) && !url.startsWith(stack.issuer.url)) offsite.push(url);
      });
      let location: string | undefined;
      page.on('response', (response) => {
        if (response.url().startsWith(`${proxy}/oauth2/callback`)) location = response.headers().location;
      });
      await page.goto(`${proxy}/oauth2/start?rd=${encodeURIComponent(rd)}`);
      await signInAtIssuer(page);
      await page.waitForLoadState('load');
      await page.waitForTimeout(300);
      t.ok(location !== undefined, 'the callback answered with a redirect (precondition: the sign-in worked)');
      t.equal(new URL(location ?? '/', proxy).origin, new URL(proxy).origin, `the callback's Location ${JSON.stringify(location)} is on the proxy's origin`);
      t.same(offsite, [], 'the browser was never sent to another site');
      t.equal(page.url().startsWith(proxy), true, `the signed-in browser ends on the proxy (it ended at ${page.url()})`);
    });
  }
});
