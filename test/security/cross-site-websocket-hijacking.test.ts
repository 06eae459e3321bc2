// Attack class: Cross-Site WebSocket Hijacking (CSWSH), OWASP (WebSocket Security
// Cheat Sheet; Web Security Testing Guide, WSTG-CLNT-10). No CVE: it is a class.
//
// A WebSocket handshake is a GET, so it passes a CSRF guard that trusts safe methods,
// and the browser attaches cookies to it whatever page opened it. A SameSite=Lax cookie
// stops other sites, not other origins of the same site: a page on another port of the
// proxy's host (or on a sibling subdomain) is same-site, so its `new WebSocket(...)`
// carries the session and gets `exec` in the person's name. Contract: a
// cookie-authenticated upgrade (WebSocket or SPDY) needs `Origin` equal to
// `https://<Host the client used>`; anything else (foreign, `null`, none) is answered
// 403 Status (reason Forbidden) and never reaches the upstream. Bearer upgrades need no
// Origin: a browser never attaches a bearer token by itself.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { browserLogin, launchBrowser, newContext } from '../helpers/browser.js';
import { FORBIDDEN_BEFORE_UPSTREAM, observe } from '../helpers/observe.js';
import { sendUpgrade, SPDY_LINES, websocketLines } from '../helpers/raw-upgrade.js';
import { startStack, untilReady, type Stack } from '../helpers/stack.js';

const EXEC = '/api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true&stdout=true';
const USER = 'demo@example.com';

/** Script for a page: opens a WebSocket and records whether it opened (10 s at most). */
const openSocketScript = (url: string) => `
  window.outcome = new Promise((resolve) => {
    setTimeout(() => resolve('timeout'), 10000);
    const ws = new WebSocket(${JSON.stringify(url)}, ['v5.channel.k8s.io']);
    ws.onopen = () => { resolve('open'); ws.close(); };
    ws.onclose = (e) => resolve('closed ' + e.code);
  });`;

/** The other origin of the same site: an HTTPS server on another port of 127.0.0.1, serving `html`. */
async function startOtherOrigin(t: Test, stack: Stack, html: string): Promise<string> {
  const [cert, key] = await Promise.all([readFile(stack.pki.servingCert, 'utf8'), readFile(stack.pki.servingKey, 'utf8')]);
  const server = createServer({ cert, key }, (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The audit record of the first request to `path` (the audit sink flushes at least every second). */
async function auditedRequest(file: string, path: string): Promise<{ user: string | null; status: number } | undefined> {
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const line = text.split('\n').find((l) => l.includes(path));
    if (line) return JSON.parse(line);
  }
  return undefined;
}

t.test('cross-site WebSocket hijacking', async (t) => {
  const dir = t.testdir();
  const auditFile = join(dir, 'audit.log');
  const stack = await startStack(t, { login: { dir }, configure: (c) => ({ ...c, audit: { path: auditFile, format: 'json' } }) });
  await untilReady(stack.proxy);
  const proxy = stack.proxy.url;
  const wss = proxy.replace('https:', 'wss:');
  const browser = await launchBrowser(t);
  const context = await newContext(browser, t);
  const value = await browserLogin(context, proxy);
  // The cookie's name is the proxy's business: take it from the browser.
  const session = `Cookie: ${(await context.cookies()).find((c) => c.value === value)?.name}=${value}`;
  const upgradesSince = (before: number) => stack.upstream.seen.slice(before).filter((s) => s.upgrade !== undefined);

  t.test('control: a page of the proxy origin opens an exec WebSocket with the session', async (t) => {
    const before = stack.upstream.seen.length;
    const page = await context.newPage();
    await page.goto(`${proxy}/debug/headers`);
    await page.evaluate(openSocketScript(`${wss}/api/v1/namespaces/default/pods/control/exec?command=sh&stdin=true&stdout=true`));
    t.equal(await page.evaluate('window.outcome'), 'open', 'same-origin cookie upgrades still work');
    t.equal(upgradesSince(before)[0]?.user?.username, USER, 'the upstream saw the upgrade as the person');
    await page.close();
  });

  t.test('a page of another origin on the same site cannot open one', async (t) => {
    const before = stack.upstream.seen.length;
    const site = await startOtherOrigin(t, stack, `<!doctype html><title>other origin</title><script>${openSocketScript(`${wss}${EXEC}`)}</script>`);
    t.not(new URL(site).origin, new URL(proxy).origin, 'another origin');
    t.equal(new URL(site).hostname, new URL(proxy).hostname, 'on the same host, so the same site: the Lax cookie goes along');
    const page = await context.newPage();
    await page.goto(site);
    t.match(await page.evaluate('window.outcome'), /^closed /, 'the socket never opened');
    t.same(upgradesSince(before).filter((s) => s.user?.username === USER), [], 'the upstream recorded no upgrade as the person');
    // The refusal must be the Origin rule's, not a cookie the browser withheld.
    t.match(await auditedRequest(auditFile, '/pods/web/exec'), { user: USER, status: 403 }, 'the proxy saw the session and answered 403');
    await page.close();
  });

  t.test('raw upgrades with the session cookie', async (t) => {
    const own = new URL(proxy).origin;
    const { port } = new URL(proxy);
    const refused: Array<[string, string[]]> = [
      ['no Origin', []],
      ['Origin: null', ['Origin: null']],
      ['a foreign origin', ['Origin: https://evil.example']],
      ['another port of the same host', [`Origin: https://127.0.0.1:${Number(port) + 1}`]],
      ['the same host over http', [`Origin: http://127.0.0.1:${port}`]],
      ['no Origin, a Referer of this site', [`Referer: ${own}/`]],
    ];
    const kinds: Array<[string, string, readonly string[]]> = [
      ['WebSocket', 'GET', websocketLines()],
      ['SPDY/3.1 over GET', 'GET', SPDY_LINES],
      ['SPDY/3.1 over POST', 'POST', SPDY_LINES],
    ];
    const upgrade = (method: string, lines: readonly string[]) =>
      observe(stack.upstream, () => sendUpgrade(t, proxy, stack.servingCA, method, EXEC, lines));
    for (const [kind, method, upgradeLines] of kinds) {
      for (const [what, originLines] of refused) {
        const seen = await upgrade(method, [...upgradeLines, session, ...originLines]);
        t.same(seen, FORBIDDEN_BEFORE_UPSTREAM, `${kind}, ${what}: refused before the upstream`);
      }
      const seen = await upgrade(method, [...upgradeLines, session, `Origin: ${own}`]);
      t.same(seen, { status: 101, reason: null, upstreamReceived: [`${method} ${EXEC} as ${USER}`] }, `${kind}, its own origin: switched, as the person`);
    }
  });

  t.test('raw upgrades with a bearer token need no Origin', async (t) => {
    const bearer = `Authorization: Bearer ${await stack.mint()}`;
    for (const [what, originLines] of [
      ['no Origin', []],
      ['a foreign origin', ['Origin: https://evil.example']],
    ] as const) {
      for (const [kind, method, upgradeLines] of [
        ['WebSocket', 'GET', websocketLines()],
        ['SPDY/3.1', 'POST', SPDY_LINES],
      ] as const) {
        const seen = await observe(stack.upstream, () => sendUpgrade(t, proxy, stack.servingCA, method, EXEC, [...upgradeLines, bearer, ...originLines]));
        t.same(seen, { status: 101, reason: null, upstreamReceived: [`${method} ${EXEC} as minted@example.com`] }, `${kind}, ${what}: switched, as the token's user`);
      }
    }
  });
});
