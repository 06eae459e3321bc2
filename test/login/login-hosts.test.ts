// Where a browser on each of the gateway's hosts signs in: the login host, a route host
// under the cookie domain (sent to the login host and back), a foreign route host (its
// own login and a cookie for itself), and anything else (as before routes existed).
import t from 'tap';
import { createLoginHosts } from '../../src/login/login-hosts.js';
import { safeRedirect } from '../../src/login/redirect.js';

const hosts = createLoginHosts({
  redirectURL: 'https://sso.example.com:8443/oauth2/callback',
  pathPrefix: '/oauth2',
  cookieDomain: '.example.com',
  routeHosts: ['finance.example.com', '*.apps.example.com', 'apps.other.org', '*.partner.net'],
});

t.test('startURL: the login host and foreign hosts sign in where they are; a host under the domain goes to the login host', async (t) => {
  t.equal(hosts.startURL('sso.example.com:8443', '/x?a=1'), '/oauth2/start?rd=%2Fx%3Fa%3D1');
  t.equal(hosts.startURL('finance.example.com:8443', '/x?a=1'), `https://sso.example.com:8443/oauth2/start?rd=${encodeURIComponent('https://finance.example.com:8443/x?a=1')}`);
  t.equal(hosts.startURL('Finance.Example.com', '/'), `https://sso.example.com:8443/oauth2/start?rd=${encodeURIComponent('https://Finance.Example.com/')}`);
  t.equal(hosts.startURL('hr.apps.example.com', '/'), `https://sso.example.com:8443/oauth2/start?rd=${encodeURIComponent('https://hr.apps.example.com/')}`);
  t.equal(hosts.startURL('apps.other.org', '/y'), '/oauth2/start?rd=%2Fy', 'a foreign host signs in on itself');
  t.equal(hosts.startURL('intranet.example.com', '/y'), '/oauth2/start?rd=%2Fy', 'under the domain but no route host: as without routes');
  t.equal(hosts.startURL(undefined, '/y'), '/oauth2/start?rd=%2Fy');
});

t.test('redirectURL and hostOnly: only a foreign route host has its own callback and a cookie of its own', async (t) => {
  t.equal(hosts.redirectURL('sso.example.com:8443'), 'https://sso.example.com:8443/oauth2/callback');
  t.equal(hosts.redirectURL('finance.example.com'), 'https://sso.example.com:8443/oauth2/callback');
  t.equal(hosts.redirectURL('apps.other.org:8443'), 'https://apps.other.org:8443/oauth2/callback');
  t.equal(hosts.redirectURL('a.partner.net'), 'https://a.partner.net/oauth2/callback');
  t.equal(hosts.redirectURL('a.b.partner.net'), 'https://sso.example.com:8443/oauth2/callback', 'a wildcard covers one label: no route host');
  t.equal(hosts.redirectURL('evil.com'), 'https://sso.example.com:8443/oauth2/callback', 'a Host no route names gets no callback of its own');
  t.ok(hosts.hostOnly('apps.other.org'));
  t.notOk(hosts.hostOnly('finance.example.com'));
  t.notOk(hosts.hostOnly('sso.example.com'));
  t.notOk(hosts.hostOnly('evil.com'));
  t.same(hosts.foreignPatterns, ['apps.other.org', '*.partner.net']);
});

t.test('rd may return to a route host under the cookie domain, nowhere else', async (t) => {
  const rd = (url: string) => safeRedirect(url, [], hosts.mayReturnTo);
  t.equal(rd('https://finance.example.com:8443/x'), 'https://finance.example.com:8443/x');
  t.equal(rd('https://hr.apps.example.com/'), 'https://hr.apps.example.com/');
  t.equal(rd('https://intranet.example.com/'), '/', 'under the domain, but not a route host');
  t.equal(rd('https://apps.other.org/'), '/', 'a foreign host signs in on itself: never a return target from the login host');
  t.equal(rd('https://evil.com/'), '/');
  t.equal(rd('http://finance.example.com/'), '/', 'never back over plain http');
});

t.test('without a cookie domain, every other route host is foreign', async (t) => {
  const alone = createLoginHosts({ redirectURL: 'https://sso.example.com/oauth2/callback', pathPrefix: '/sso', cookieDomain: '', routeHosts: ['sso.example.com', 'finance.example.com'] });
  t.equal(alone.startURL('finance.example.com', '/'), '/sso/start?rd=%2F');
  t.equal(alone.redirectURL('finance.example.com'), 'https://finance.example.com/sso/callback');
  t.ok(alone.hostOnly('finance.example.com'));
  t.notOk(alone.hostOnly('sso.example.com'));
  t.same(alone.foreignPatterns, ['finance.example.com']);
});
