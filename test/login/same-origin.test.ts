// The cross-site guard for cookie-authenticated requests, and the allowedOrigins it
// accepts besides our own: how a request's Origin (or Referer) is compared, and which
// entries the configuration takes.
import t from 'tap';
import { sessionSchema } from '../../src/config/session-schema.js';
import { isSameOrigin, isSameOriginOrSafe } from '../../src/login/same-origin.js';
import type { ClientRequest } from '../../src/request/client.js';

const request = (method: string, headers: Record<string, string>) => ({ method, headers: { host: 'proxy.example.com', ...headers } }) as unknown as ClientRequest;
const DASHBOARD = ['https://dashboard.example.com'];

t.test('isSameOriginOrSafe', async (t) => {
  for (const method of ['GET', 'HEAD', 'OPTIONS']) t.ok(isSameOriginOrSafe(request(method, { origin: 'https://evil.example' })), `${method} is safe`);
  const rows: [string, Record<string, string>, boolean, boolean][] = [
    // what, headers, accepted without allowedOrigins, accepted with DASHBOARD
    ['our origin', { origin: 'https://proxy.example.com' }, true, true],
    ['our origin, the host in capitals', { origin: 'https://proxy.example.com', host: 'Proxy.Example.COM' }, true, true],
    ['our origin, Host with the default port', { origin: 'https://proxy.example.com', host: 'proxy.example.com:443' }, true, true],
    ['our Referer without Origin', { referer: 'https://proxy.example.com/oauth2/kubeconfig' }, true, true],
    ['an allowed origin', { origin: 'https://dashboard.example.com' }, false, true],
    ['an allowed Referer', { referer: 'https://dashboard.example.com/some/page' }, false, true],
    ['another site', { origin: 'https://evil.example' }, false, false],
    ['our host over http', { origin: 'http://proxy.example.com' }, false, false],
    ['another port', { origin: 'https://proxy.example.com:8443' }, false, false],
    ['an allowed host over http', { origin: 'http://dashboard.example.com' }, false, false],
    ['a subdomain of an allowed origin', { origin: 'https://x.dashboard.example.com' }, false, false],
    ['Origin: null', { origin: 'null' }, false, false],
    ['a foreign Origin with our Referer', { origin: 'https://evil.example', referer: 'https://proxy.example.com/' }, false, false],
    ['neither header', {}, false, false],
    ['a Referer that is not a URL', { referer: '/relative' }, false, false],
  ];
  for (const [what, headers, own, allowed] of rows) {
    t.equal(isSameOriginOrSafe(request('POST', headers)), own, `POST, ${what}`);
    t.equal(isSameOriginOrSafe(request('POST', headers), DASHBOARD), allowed, `POST, ${what}, with allowedOrigins`);
    t.equal(isSameOrigin(request('GET', headers), DASHBOARD), allowed, `isSameOrigin ignores the method: GET, ${what}`);
  }
});

t.test('authentication.session.allowedOrigins', async (t) => {
  const parse = (allowedOrigins: unknown) =>
    sessionSchema.safeParse({
      oidc: { issuerURL: 'https://idp.example.com', clientID: 'proxy', redirectURL: 'https://proxy.example.com/oauth2/callback' },
      allowedOrigins,
    });
  t.same(parse(undefined).data?.allowedOrigins, [], 'none by default');
  t.same(
    parse(['https://dashboard.example.com', 'https://Grafana.Example.com:8443', 'http://127.0.0.1:3000', 'http://localhost:8080']).data?.allowedOrigins,
    ['https://dashboard.example.com', 'https://grafana.example.com:8443', 'http://127.0.0.1:3000', 'http://localhost:8080'],
    'kept as browsers send them (lower-case host)',
  );
  const refused: [string, RegExp][] = [
    ['https://dashboard.example.com/', /no path or trailing slash.*https:\/\/dashboard\.example\.com$/],
    ['https://dashboard.example.com/app', /expected an origin.*for this URL that is https:\/\/dashboard\.example\.com/],
    ['https://dashboard.example.com:443', /for this URL that is https:\/\/dashboard\.example\.com$/],
    ['dashboard.example.com', /expected an origin, scheme:\/\/host\[:port\]/],
    ['https://user:pw@dashboard.example.com', /expected an origin/],
    ['https://dashboard.example.com?x=1', /expected an origin/],
    ['http://dashboard.example.com', /http:\/\/ is refused for dashboard\.example\.com.*use https:\/\//],
    ['ftp://files.example.com', /ftp:\/\/ is refused|expected an origin/],
  ];
  for (const [entry, message] of refused) {
    const result = parse([entry]);
    t.notOk(result.success, entry);
    t.same(result.error?.issues.map((i) => i.path), [['allowedOrigins', 0]], `${entry}: at the key`);
    t.match(result.error?.issues[0]?.message, message, `${entry}: with the fix`);
  }
});
