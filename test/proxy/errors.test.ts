// The error registry and docs/errors.md must describe the same errors (as fastify keeps its error docs).
import { readFileSync } from 'node:fs';
import t from 'tap';
import { proxyErrors, statusBody, statusHeaders, type ProxyErrorCode } from '../../src/request/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

t.test('every registry entry is in docs/errors.md with its status and reason, and nothing else is', async (t) => {
  const rows = [...doc.matchAll(/^\| `(\w+)` \| (\d{3}) \| (\w+) \|/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
  const registry = Object.entries(proxyErrors).map(([code, e]) => [code, e.status, e.reason]);
  t.same(rows.sort(), registry.sort());
});

t.test('Status bodies are what kubectl expects', async (t) => {
  for (const code of Object.keys(proxyErrors) as ProxyErrorCode[]) {
    const body = JSON.parse(statusBody(code, 'rid'));
    t.match(body, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: proxyErrors[code].status, reason: proxyErrors[code].reason }, code);
  }
  t.equal(statusHeaders('UNAUTHENTICATED', '{}', 'rid')['www-authenticate'], 'Bearer realm="kube-front-proxy"');
  t.notOk(statusHeaders('IMPERSONATION_FORBIDDEN', '{}', 'rid')['www-authenticate']);
  t.match(JSON.parse(statusBody('INTERNAL', 'rid-42')).message, /rid-42/);
});
