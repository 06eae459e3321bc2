// The SSO gateway's pure parts: which route a host and path belong to, which
// paths may be routed at all, a route's allow rule, the application headers
// and what forward-auth reads and answers.
import t from 'tap';
import { checkRouteRule } from '../../src/authz/route-rules.js';
import { applicationHeaderLines } from '../../src/proxy/identity-headers.js';
import { allowedGroupsParam, authRequestHeaders, envoyOriginalPath, isCrossSite, originalRequest, pinnedRoute } from '../../src/route/forward-auth.js';
import { createRouter, isRoutablePath, routingPath } from '../../src/route/router.js';
import { hostOf } from '../../src/request/client.js';
import { withClaims, type Identity } from '../../src/request/identity.js';
import type { ClientRequest } from '../../src/request/client.js';

const routes = [
  { name: 'any', pathPrefix: '/' },
  { name: 'any-static', pathPrefix: '/static' },
  { name: 'wild', host: '*.example.com', pathPrefix: '/' },
  { name: 'finance', host: 'finance.example.com', pathPrefix: '/' },
  { name: 'finance-api', host: 'finance.example.com', pathPrefix: '/api/' },
];
const route = createRouter(routes);

t.test('host first (exact, wildcard, any), then the longest prefix on whole segments', async (t) => {
  t.equal(route('finance.example.com', '/')?.name, 'finance');
  t.equal(route('finance.example.com', '/api')?.name, 'finance-api');
  t.equal(route('finance.example.com', '/api/x')?.name, 'finance-api');
  t.equal(route('finance.example.com', '/apix')?.name, 'finance', 'not a whole segment');
  t.equal(route('finance.example.com', '/static/a.css')?.name, 'finance', 'an exact host beats a longer prefix on any host');
  t.equal(route('hr.example.com', '/x')?.name, 'wild');
  t.equal(route('a.b.example.com', '/x')?.name, 'any', 'a wildcard covers one label only');
  t.equal(route('example.com', '/x')?.name, 'any');
  t.equal(route(undefined, '/static')?.name, 'any-static');
  t.equal(createRouter([{ host: 'only.example.com', pathPrefix: '/' }])('other.example.com', '/'), undefined, 'no match is no route');
});

t.test('hostOf: lower case, no port, no trailing dot', async (t) => {
  t.equal(hostOf('Finance.Example.COM:8443'), 'finance.example.com');
  t.equal(hostOf('finance.example.com.'), 'finance.example.com');
  t.equal(hostOf('[::1]:443'), '[::1]');
  t.equal(hostOf(undefined), undefined);
});

t.test('paths an application could read as another route are not routed', async (t) => {
  for (const path of ['/public/../admin', '/public/%2e%2e/admin', '/public/%2E./admin', '/a/./b', '/a%2fb', '/a%5Cb', '/a\\b', '//admin', '/admin;x', '/public/..;/admin']) t.notOk(isRoutablePath(path), path);
  t.equal(routingPath('/%61dmin/%2F%20x'), '/admin/%2F%20x', 'unreserved escapes decoded before matching, others kept');
  for (const path of ['/', '/finance/x', '/a..b/c', '/.well-known/x']) t.ok(isRoutablePath(path), path);
});

const person = (claims: Record<string, unknown>, groups = ['oidc:finance']): Identity =>
  withClaims({ username: 'alice', groups, extra: {}, authMethod: 'jwt' as const }, claims);

t.test('allow: one of users, groups, emailDomains; every claim', async (t) => {
  const empty = { users: [], groups: [], emailDomains: [], claims: {} };
  t.same(checkRouteRule(person({}), undefined), { allowed: true });
  t.same(checkRouteRule(person({}), empty), { allowed: true }, 'no lists: every authenticated caller');
  t.same(checkRouteRule(person({}), { ...empty, groups: ['oidc:finance'] }), { allowed: true });
  t.same(checkRouteRule(person({}, ['oidc:hr']), { ...empty, groups: ['oidc:finance'] }), { allowed: false, rule: 'groups' });
  t.same(checkRouteRule(person({}, []), { ...empty, users: ['alice'], groups: ['oidc:x'] }), { allowed: true });
  t.same(checkRouteRule(person({ email: 'a@Example.com' }, []), { ...empty, emailDomains: ['example.com'] }), { allowed: true });
  t.same(checkRouteRule(person({ email: 'a@example.com', email_verified: false }, []), { ...empty, emailDomains: ['example.com'] }), { allowed: false, rule: 'emailDomains' }, 'an unverified email is no email');
  t.same(checkRouteRule(person({ email: 'a@evil.com' }, []), { ...empty, users: ['bob'], emailDomains: ['example.com'] }), { allowed: false, rule: 'users|emailDomains' });
  t.same(checkRouteRule(person({ hd: 'example.com' }), { ...empty, groups: ['oidc:finance'], claims: { hd: 'example.com' } }), { allowed: true });
  t.same(checkRouteRule(person({ hd: 'other.com' }), { ...empty, groups: ['oidc:finance'], claims: { hd: 'example.com' } }), { allowed: false, rule: 'claims.hd' });
  t.same(checkRouteRule(person({ roles: ['a', 'b'] }), { ...empty, claims: { roles: ['b', 'c'] } }), { allowed: true }, 'a list claim holding one of them');
  t.same(checkRouteRule(person({}), { ...empty, claims: { hd: 'example.com' } }), { allowed: false, rule: 'claims.hd' }, 'a missing claim fails');
});

t.test('application headers: oauth2-proxy names, groups joined by commas, a comma in a group refused', async (t) => {
  const lines = applicationHeaderLines(person({ email: 'alice@example.com', preferred_username: 'alice' }, ['oidc:finance', 'oidc:all']), 'tok');
  t.same(lines, {
    ok: true,
    lines: ['X-Forwarded-User', 'alice', 'X-Forwarded-Email', 'alice@example.com', 'X-Forwarded-Groups', 'oidc:finance,oidc:all', 'X-Forwarded-Preferred-Username', 'alice', 'X-Forwarded-Access-Token', 'tok'],
  });
  t.same(applicationHeaderLines(person({}, ['a,b'])), { ok: false, field: 'groups' });
  t.same(applicationHeaderLines(person({ email: 'a@b.c\r\nX-Evil: 1' })), { ok: false, field: 'email' });
  t.same(applicationHeaderLines(person({}, [])), { ok: true, lines: ['X-Forwarded-User', 'alice'] });
  t.same(applicationHeaderLines(person({ email: 'ceo@corp.com', email_verified: false }, [])), { ok: true, lines: ['X-Forwarded-User', 'alice'] }, 'an unverified email is not sent');
  t.same(authRequestHeaders(['X-Forwarded-User', 'alice', 'X-Forwarded-Groups', 'g']), { 'X-Auth-Request-User': 'alice', 'X-Auth-Request-Groups': 'g' });
});

t.test('forward-auth reads the original request as ingresses send it', async (t) => {
  const req = (headers: Record<string, string>) => ({ headers: { host: 'proxy.example.com', ...headers }, httpVersion: '1.1' }) as unknown as ClientRequest;
  t.same(originalRequest(req({ 'x-original-url': 'https://Finance.example.com/api/x?y=1' })), { host: 'finance.example.com', path: '/api/x', origin: 'https://finance.example.com' });
  t.same(originalRequest(req({ 'x-forwarded-host': 'hr.example.com', 'x-forwarded-uri': '/a/b?c' })), { host: 'hr.example.com', path: '/a/b', origin: 'https://hr.example.com' });
  t.same(originalRequest(req({ 'x-forwarded-host': 'hr.example.com', 'x-original-uri': '/z' })), { host: 'hr.example.com', path: '/z', origin: 'https://hr.example.com' });
  t.same(originalRequest(req({})), { host: 'proxy.example.com', path: '/', origin: 'https://proxy.example.com' });
  // A client adding the header another ingress would set (the attacker review's bypass): refused.
  t.equal(originalRequest(req({ 'x-forwarded-host': 'finance.example.com', 'x-forwarded-uri': '/secret', 'x-original-url': 'https://status.example.com/' })), undefined);
  t.equal(originalRequest(req({ 'x-original-uri': '/secret', 'x-original-url': 'https://finance.example.com/' })), undefined);
  t.equal(originalRequest(req({ 'x-original-url': 'not a url' })), undefined, 'an unreadable URL is refused, not skipped');
  t.equal(originalRequest(req({ 'x-original-url': 'https://2130706433\\.partner.example/x' })), undefined, 'a host a URL parser reads otherwise (\\ ends it) is refused');
  t.equal(originalRequest(req({ 'x-forwarded-host': 'a#b.example.com' })), undefined, 'so is such an X-Forwarded-Host');
  t.equal(originalRequest(req({ 'x-original-url': 'http://App.example.com:8080/x' }))?.origin, 'http://app.example.com:8080', 'the origin as a browser writes it');
  t.equal(originalRequest(req({ 'x-forwarded-host': 'app.example.com', 'x-forwarded-proto': 'https' }))?.origin, 'https://app.example.com');
  t.same(originalRequest(req({ 'x-original-url': 'https://a.example.com/x/../y' })), { host: 'a.example.com', path: '/x/../y', origin: 'https://a.example.com' }, 'dot segments kept, for isRoutablePath to refuse');
  t.same(allowedGroupsParam('/oauth2/auth?allowed_groups=oidc:a,%20oidc:b'), ['oidc:a', 'oidc:b']);
  t.equal(allowedGroupsParam('/oauth2/auth'), undefined);
});

t.test("Envoy ext_authz: the original path follows the auth path, with the original Host", async (t) => {
  const req = (headers: Record<string, string>) => ({ headers: { host: 'wiki.example.com', ...headers }, httpVersion: '1.1' }) as unknown as ClientRequest;
  t.equal(envoyOriginalPath('/oauth2/auth/page/x?q=1', '/oauth2/auth'), '/page/x?q=1');
  t.equal(envoyOriginalPath('/oauth2/auth/', '/oauth2/auth'), '/');
  t.equal(envoyOriginalPath('/oauth2/auth', '/oauth2/auth'), undefined, 'the plain auth URL is nginx/Traefik forward-auth');
  t.equal(envoyOriginalPath('/oauth2/authx/y', '/oauth2/auth'), undefined);
  t.same(originalRequest(req({}), '/page/x?q=1'), { host: 'wiki.example.com', path: '/page/x', origin: 'https://wiki.example.com' });
  t.equal(originalRequest(req({ 'x-original-url': 'https://wiki.example.com/other' }), '/page'), undefined, 'a header beside it must agree');
  t.same(originalRequest(req({ 'x-original-url': 'https://wiki.example.com/page' }), '/page'), { host: 'wiki.example.com', path: '/page', origin: 'https://wiki.example.com' });
  t.equal(originalRequest(req({ 'x-forwarded-host': 'status.example.com' }), '/page'), undefined, "Envoy: a host header beside the check's own Host must name it");
  t.equal(originalRequest(req({ 'x-original-url': 'https://status.example.com/page' }), '/page'), undefined);
  t.same(originalRequest(req({ 'x-forwarded-host': 'Wiki.example.com' }), '/page')?.host, 'wiki.example.com');
  t.same(originalRequest(req({}), '//admin'), { host: 'wiki.example.com', path: '//admin', origin: 'https://wiki.example.com' }, 'kept as sent, for isRoutablePath to refuse');
});

t.test('forward-auth holds a session cookie to the cross-site rule, with the original URL as our origin', async (t) => {
  const original = { host: 'wiki.example.com', path: '/transfer', origin: 'https://wiki.example.com' };
  const req = (headers: Record<string, string>, method = 'GET') => ({ headers: { host: 'sso.example.com', ...headers }, method, httpVersion: '1.1' }) as unknown as ClientRequest;
  const allowed = ['https://portal.example.com'];
  t.ok(isCrossSite(req({ origin: 'https://evil.example.com' }), original, allowed, false), 'a foreign Origin, whatever the method (nginx asks with GET)');
  t.ok(isCrossSite(req({ origin: 'null' }), original, allowed, false), 'Origin: null');
  t.notOk(isCrossSite(req({ origin: 'https://wiki.example.com' }), original, allowed, false), 'the original URL is our origin');
  t.notOk(isCrossSite(req({ origin: 'https://portal.example.com' }), original, allowed, false), 'an allowed origin');
  t.notOk(isCrossSite(req({}), original, allowed, false), 'no Origin and no method reported: a navigation');
  t.notOk(isCrossSite(req({ referer: 'https://evil.example.com/' }), original, allowed, false), 'a link from elsewhere is a navigation (GET)');
  t.ok(isCrossSite(req({ 'x-forwarded-method': 'POST' }), original, allowed, false), 'an unsafe method reported without Origin or Referer');
  t.ok(isCrossSite(req({ 'x-original-method': 'delete', referer: 'https://evil.example.com/' }), original, allowed, false), 'an unsafe method from a foreign Referer');
  t.notOk(isCrossSite(req({ 'x-forwarded-method': 'POST', referer: 'https://wiki.example.com/form' }), original, allowed, false), 'an unsafe method from our own page');
  t.ok(isCrossSite(req({}, 'POST'), original, allowed, true), "Envoy's check carries the original method");
  t.notOk(isCrossSite(req({}, 'POST'), original, allowed, false), "nginx's subrequest method is not the original's");
  t.ok(isCrossSite(req({ 'x-forwarded-method': 'GET', 'x-original-method': 'POST' }), original, allowed, false), 'a client adding a safe method beside the ingress\'s unsafe one');
  t.ok(isCrossSite(req({ 'x-forwarded-method': 'GET' }, 'POST'), original, allowed, true), "Envoy's own method counts beside a header");
});

t.test('route= on the auth URL, or X-Auth-Request-Route, names the route the ingress fronts', async (t) => {
  const req = (headers: Record<string, string | string[]> = {}) => ({ headers, httpVersion: '1.1' }) as unknown as ClientRequest;
  t.equal(pinnedRoute(req(), '/oauth2/auth?route=wiki&allowed_groups=a', false), 'wiki');
  t.equal(pinnedRoute(req(), '/oauth2/auth', false), undefined);
  t.equal(pinnedRoute(req(), '/oauth2/auth?route=', false), '', 'an empty name pins to no route at all');
  t.equal(pinnedRoute(req({ 'x-auth-request-route': 'wiki' }), '/oauth2/auth/page?route=status', true), 'wiki', "Envoy: the header; the query is the original request's");
  t.equal(pinnedRoute(req(), '/oauth2/auth/page?route=status', true), undefined, "Envoy's original query pins nothing");
  t.equal(pinnedRoute(req({ 'x-auth-request-route': 'wiki' }), '/oauth2/auth?route=wiki', false), 'wiki', 'both, agreeing');
  t.equal(pinnedRoute(req({ 'x-auth-request-route': 'status' }), '/oauth2/auth?route=wiki', false), '', 'both, disagreeing: no route');
  t.equal(pinnedRoute(req(), '/oauth2/auth?route=wiki&route=status', false), '', 'twice, disagreeing');
});
