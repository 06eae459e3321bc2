// Attack class: route rule bypass. The gateway's routes each say who may pass
// (allow: groups, users, email domains, claims; no allow: every authenticated
// person; public: anyone). The attacker is someone the rule refuses, or nobody at
// all, and wants the route's application to answer anyway: through a credential
// the proxy does not vouch for (a passed-through token), through an upgrade,
// through a public route's prefix, or through a spelling of the path the router
// reads as another route's.
//
// Real parts: the dev OpenID provider's signing key (stack.mint), a small HTTPS
// application that records every request it is sent, the proxy. Paths go out as raw
// bytes: a client library would resolve the dot segments before sending.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import t from 'tap';
import type { ConfigInput } from '../../src/config/schema.js';
import { rawRequest } from '../kube/helpers/raw-http.js';
import { openRaw, requestHead } from '../helpers/raw-tls.js';
import { devPki, startStack, untilReady } from '../helpers/stack.js';

const pki = await devPki();
/** The paths the application was sent, in order. */
const appSaw: string[] = [];
const app = createServer({ cert: await readFile(pki.upstreamCert), key: await readFile(pki.upstreamKey) }, (req, res) => {
  appSaw.push(req.url ?? '');
  res.writeHead(200, { 'content-type': 'text/plain' }).end('the app');
});
app.listen(0, '127.0.0.1');
await once(app, 'listening');
t.teardown(() => app.close());
const appURL = `https://127.0.0.1:${(app.address() as { port: number }).port}`;

/** finance: oidc:finance only; open: any authenticated caller; /finance/public: anyone. */
function gateway(passthrough: boolean) {
  return (base: ConfigInput): ConfigInput => {
    const { upstream: _dev, ...rest } = base;
    const app = { url: appURL, caFile: pki.upstreamCA, identity: 'application' as const };
    return {
      ...rest,
      routes: [
        { name: 'finance', pathPrefix: '/finance', upstream: app, allow: { groups: ['oidc:finance'] } },
        { name: 'finance-public', pathPrefix: '/finance/public', upstream: app, public: true },
        { name: 'open', pathPrefix: '/open', upstream: app },
      ],
      authentication: { ...rest.authentication, passthrough },
    };
  };
}

/** Whether the application was sent a request for `path`. */
const reached = (path: string) => appSaw.includes(path);

t.test('with passthrough on, a token the proxy cannot read does not open a route that has a rule, or one for authenticated people', async (t) => {
  const stack = await startStack(t, { configure: gateway(true) });
  await untilReady(stack.proxy);
  // Any string that is no JWT the proxy knows: passthrough forwards it unread.
  appSaw.length = 0;
  const junk = { authorization: 'Bearer not-a-token-anyone-issued', accept: 'application/json' };

  const finance = await stack.fetch('/finance/ledger', { headers: junk });
  const body = await finance.body.text();
  t.not(body, 'the app', `a route with a rule (groups: oidc:finance) answered ${finance.statusCode} with the app's page`);
  t.notOk(reached('/finance/ledger'), 'the finance app was never sent the request');

  const open = await stack.fetch('/open/page', { headers: junk });
  await open.body.dump();
  t.notOk(reached('/open/page'), 'a route for authenticated people was never sent an unauthenticated request');
  t.equal(open.statusCode, 401, 'a token only kube-apiserver could judge names nobody an application could be told');

  // Forward-auth already holds this line: a token only kube-apiserver could judge gets 401.
  const check = await stack.fetch('/oauth2/auth', { headers: { ...junk, 'x-original-url': 'https://gw.test/finance/ledger' } });
  await check.body.dump();
  t.equal(check.statusCode, 401, 'forward-auth refuses the same token for the same URL');
});

t.test('someone the rule refuses, and nobody at all, reach neither the app nor a path under the public prefix that is not public', async (t) => {
  const stack = await startStack(t, { configure: gateway(false) });
  await untilReady(stack.proxy);
  const hr = { authorization: `Bearer ${await stack.mint({ groups: ['hr'] })}`, accept: 'application/json' };
  const finance = { authorization: `Bearer ${await stack.mint({ groups: ['finance'] })}`, accept: 'application/json' };

  appSaw.length = 0;
  const get = async (path: string, headers: Record<string, string>) =>
    (await rawRequest(stack.proxy.url, stack.servingCA, 'GET', path, Object.entries(headers).map(([k, v]) => `${k}: ${v}`))).status;
  t.equal(await get('/finance/ledger', finance), 200, 'the rule lets oidc:finance in (the test can tell)');
  t.equal(await get('/finance/ledger', hr), 403, 'oidc:hr is refused');
  t.equal(await get('/finance/ledger', { accept: 'application/json' }), 401, 'nobody is asked to sign in');
  t.equal(await get('/finance/public/logo.svg', {}), 200, 'the public prefix is public');
  // Longest prefix on whole segments: /finance/publicity is finance's, not the public route's.
  t.equal(await get('/finance/publicity', hr), 403, 'a longer name under the public prefix stays under the rule');
  // Unreserved escapes are decoded before matching, as the app decodes them.
  t.equal(await get('/%66inance/ledger', hr), 403, '%66 is f: still the finance route');
  t.equal(await get('/finance/%70ublic/../ledger', hr), 400, 'dot segments after an escaped public prefix');
  t.equal(await get('/finance/public%2F..%2Fledger', {}), 400, 'encoded slashes');
  t.equal(await get('/finance/public/..%2fledger', {}), 400);
  t.equal(await get('/finance/public/.%2e/ledger', {}), 400);
  t.equal(await get('/finance/public;/../ledger', {}), 400, 'path parameters');
  t.equal(await get('/finance//public/../ledger', {}), 400, 'empty segments');
  t.same(
    appSaw.filter((url) => !url.startsWith('/finance/public/') && url !== '/finance/ledger'),
    [],
    'the app saw nothing but the allowed request and the public one',
  );
  t.equal(appSaw.filter((url) => url === '/finance/ledger').length, 1, 'and the allowed one once');
});

t.test('an upgrade (WebSocket) to a route is held to the same rule as a request', async (t) => {
  const stack = await startStack(t, { configure: gateway(false) });
  await untilReady(stack.proxy);
  appSaw.length = 0;
  const hr = await stack.mint({ groups: ['hr'] });
  const upgrade = async (lines: string[]) => {
    const raw = await openRaw(stack.proxy.url, stack.servingCA, t);
    const { host } = new URL(stack.proxy.url);
    raw.write(requestHead('GET', '/finance/socket', host, ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', ...lines]));
    const text = await raw.until((r) => r.includes('\r\n\r\n'));
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
  };
  t.equal(await upgrade([`Authorization: Bearer ${hr}`]), 403, 'oidc:hr');
  t.equal(await upgrade([]), 401, 'nobody');
  t.notOk(reached('/finance/socket'), 'the app never saw the handshake');
});
