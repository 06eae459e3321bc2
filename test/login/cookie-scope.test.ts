// What the session cookie may do, stage by stage (src/login/cookie-scope.ts). The browser
// and raw-socket attacks are in test/security/cross-site-websocket-hijacking and
// api-served-page-same-origin; this table covers the spellings and allowedOrigins.
import type { IncomingMessage } from 'node:http';
import t from 'tap';
import { reachesWorkloadContent, sessionRefusal } from '../../src/login/cookie-scope.js';

const request = (method: string, headers: Record<string, string>) =>
  ({ method, headers: { host: 'kube.example.com', ...headers } }) as unknown as IncomingMessage;

t.test('proxy subresources, however the path is spelt', async (t) => {
  const workload = [
    '/api/v1/namespaces/default/pods/web/proxy',
    '/api/v1/namespaces/default/pods/web:8080/proxy/index.html',
    '/api/v1/namespaces/default/services/https:web:443/proxy/',
    '/api/v1/nodes/node-1/proxy/metrics',
    '/api/v1/proxy/namespaces/default/pods/web/',
    '//api//v1/namespaces/default/pods/web/proxy/',
    '/api/v1/namespaces/default/pods/web/%70roxy/',
    '/api/v1/namespaces/default/pods%2Fweb%2Fproxy/',
    '/api/v1/namespaces/default/configmaps/../pods/web/proxy/',
    '/api/v1/namespaces/default/pods/web/./proxy',
    '/api/v1/namespaces/default/pods/web/proxy%ZZ', // cannot be decoded: fail closed
    '/api/v1/namespaces/default/pods/web/proxy/..%2F', // kube-apiserver does not resolve '..'
    '/api/v1/namespaces/default/pods/web/proxy/..',
  ];
  for (const path of workload) t.ok(reachesWorkloadContent(path), path);
  const api = [
    '/api/v1/namespaces/default/pods/web',
    '/api/v1/namespaces/default/pods/web/log',
    '/api/v1/namespaces/default/configmaps/proxy',
    '/apis/apps/v1/namespaces/proxy/deployments/proxy',
    '/api/v1/namespaces/proxy/pods',
  ];
  for (const path of api) t.notOk(reachesWorkloadContent(path), path);
});

t.test('upgrades need an Origin of this site or of allowedOrigins; a Referer does not do', async (t) => {
  const allowed = ['https://dashboard.example.com'];
  const cases: Array<[Record<string, string>, string | undefined]> = [
    [{ origin: 'https://kube.example.com' }, undefined],
    [{ origin: 'https://dashboard.example.com' }, undefined],
    [{ origin: 'https://evil.example.com' }, 'CROSS_SITE_REQUEST'],
    [{ origin: 'null' }, 'CROSS_SITE_REQUEST'],
    [{ referer: 'https://kube.example.com/page' }, 'CROSS_SITE_REQUEST'],
    [{}, 'CROSS_SITE_REQUEST'],
  ];
  for (const [headers, expected] of cases) {
    t.equal(sessionRefusal(request('GET', headers), '/api/v1/namespaces/default/pods/web/exec', true, allowed), expected, JSON.stringify(headers));
  }
  t.equal(
    sessionRefusal(request('GET', { origin: 'https://dashboard.example.com' }), '/api/v1/namespaces/default/pods/web/exec', true, []),
    'CROSS_SITE_REQUEST',
    'an origin not configured is refused',
  );
});

t.test('state changes need this site or allowedOrigins; safe methods pass; proxy subresources never', async (t) => {
  const allowed = ['https://dashboard.example.com'];
  const path = '/api/v1/namespaces/default/configmaps';
  t.equal(sessionRefusal(request('POST', { origin: 'https://dashboard.example.com' }), path, false, allowed), undefined);
  t.equal(sessionRefusal(request('POST', { origin: 'https://evil.example.com' }), path, false, allowed), 'CROSS_SITE_REQUEST');
  t.equal(sessionRefusal(request('GET', {}), path, false, allowed), undefined);
  t.equal(
    sessionRefusal(request('GET', { origin: 'https://kube.example.com' }), '/api/v1/namespaces/default/pods/web/proxy/', false, allowed),
    'SESSION_NOT_ACCEPTED_HERE',
  );
});
