// Attack class: spoofed forwarding headers. A client sends the headers a proxy in
// front would set — X-Real-IP, Forwarded, X-Forwarded-Port/-Prefix/-Uri…, the CDN
// client-IP headers, the URL overrides of IIS and Symfony — so that the upstream
// logs or trusts an address, scheme, host or path the client chose: kube-apiserver
// puts X-Forwarded-For and X-Real-IP into its audit events' sourceIPs; web
// frameworks build redirects and IP allow-lists from the others. No CVE of its own;
// the class behind many (e.g. CVE-2018-14773, Symfony's X-Original-URL/X-Rewrite-URL).
//
// The proxy sets X-Forwarded-For (the client's address alone, never appended to a
// chain the client sent), X-Forwarded-Proto and X-Forwarded-Host itself and drops
// every other header of the list in docs/architecture.md ("Forwarding headers").
// test/kube/identity.test.ts checks the audit event of the real kube-apiserver.
import t from 'tap';
import { rawRequest } from '../kube/helpers/raw-http.js';
import { startStack, untilReady } from '../helpers/stack.js';

const SPOOFED = [
  'Forwarded: for=203.0.113.9;proto=http;host=evil.example',
  'X-Forwarded: 203.0.113.9',
  'Forwarded-For: 203.0.113.9',
  'X-Real-IP: 203.0.113.9',
  'X-Forwarded-For: 203.0.113.9, 198.51.100.1',
  'X-Forwarded-Proto: http',
  'X-Forwarded-Host: evil.example',
  'X-Forwarded-Port: 80',
  'X-Forwarded-Prefix: /admin',
  'X-Forwarded-Server: evil.example',
  'X-Forwarded-Uri: /admin',
  'X-Forwarded-Ssl: off',
  'X-Forwarded-Scheme: http',
  'X-Forwarded-Client-Cert: Hash=forged;Subject="CN=admin"',
  'X-Client-IP: 203.0.113.9',
  'Client-IP: 203.0.113.9',
  'True-Client-IP: 203.0.113.9',
  'X-Cluster-Client-IP: 203.0.113.9',
  'CF-Connecting-IP: 203.0.113.9',
  'Cf-Pseudo-IPv4: 203.0.113.9',
  'Fastly-Client-IP: 203.0.113.9',
  'X-0-Client-IP: 203.0.113.9',
  'X-AppEngine-User-IP: 203.0.113.9',
  'X-Original-Forwarded-For: 203.0.113.9',
  'X-Original-URL: /admin',
  'X-Original-URI: /admin',
  'X-Rewrite-URL: /admin',
  'X-Original-Host: evil.example',
  'X-Host: evil.example',
];

t.test('forwarding headers the client sends never reach the upstream; the proxy sets its own', async (t) => {
  const stack = await startStack(t);
  await untilReady(stack.proxy);
  const { host } = new URL(stack.proxy.url);
  const auth = `Authorization: Bearer ${await stack.mint()}`;
  const res = await rawRequest(stack.proxy.url, stack.servingCA, 'GET', '/debug/headers', [...SPOOFED, auth, 'X-Kept: 1']);
  t.equal(res.status, 200, 'answered');
  const seen = stack.upstream.seen.find((s) => s.auditId === res.header('audit-id'))!;
  const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  const value = (name: string) => seen.rawHeaders.filter((_, i) => i % 2 === 1 && seen.rawHeaders[i - 1].toLowerCase() === name);

  for (const line of SPOOFED) {
    const name = line.slice(0, line.indexOf(':')).toLowerCase();
    if (['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'].includes(name)) continue;
    t.notOk(names.includes(name), `${name} dropped`);
  }
  t.same(value('x-forwarded-for'), ['127.0.0.1'], "X-Forwarded-For is the client's address only, not appended to its chain");
  t.same(value('x-forwarded-proto'), ['https']);
  t.same(value('x-forwarded-host'), [host]);
  t.notOk(seen.rawHeaders.some((v) => v.includes('203.0.113.9') || v.includes('evil.example') || v.includes('/admin')), 'no spoofed value anywhere');
  t.same(value('x-kept'), ['1'], 'other headers pass');
});
