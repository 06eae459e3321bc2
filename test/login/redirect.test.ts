// rd= after login: same-origin paths and allow-listed hosts only; every open-redirect form falls back to "/".
import t from 'tap';
import { safeRedirect } from '../../src/login/redirect.js';

const allowed = ['app.example.com', 'grafana.example.com:8443'];

t.test('accepted', async (t) => {
  for (const [rd, want] of [
    ['/', '/'],
    ['/api/v1/namespaces?watch=1', '/api/v1/namespaces?watch=1'],
    ['/ui/#/pods', '/ui/#/pods'],
    ['/%2F%2Fevil.com', '/%2F%2Fevil.com'],
    ['https://app.example.com/dash', 'https://app.example.com/dash'],
    ['https://grafana.example.com:8443/d/1', 'https://grafana.example.com:8443/d/1'],
  ]) {
    t.equal(safeRedirect(rd, allowed), want, rd);
  }
});

t.test('refused: every open-redirect form', async (t) => {
  for (const rd of [
    '//evil.com',
    '//evil.com/path',
    '/\\evil.com',
    '\\\\evil.com',
    '/\t/evil.com',
    '/\n/evil.com',
    'https://evil.com',
    'http://app.example.com/',
    'https://app.example.com.evil.com/',
    'https://evil.com@app.example.com/',
    'https://app.example.com@evil.com/',
    'javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'evil.com',
    '///evil.com',
    'https:evil.com',
    '',
    'x'.repeat(5000),
  ]) {
    t.equal(safeRedirect(rd, allowed), '/', JSON.stringify(rd.slice(0, 40)));
  }
  t.equal(safeRedirect(undefined, allowed), '/');
  t.equal(safeRedirect(['/a', '/b'], allowed), '/', 'a repeated rd parameter');
});
