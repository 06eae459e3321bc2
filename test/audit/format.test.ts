// Audit lines must parse as nginx "combined" (what log tooling expects), with our fields after it.
import t from 'tap';
import { formatCombined, formatJson, redactTarget, timeLocal, type AuditRecord } from '../../src/audit/format.js';

/** nginx combined, as log parsers (goaccess, fluent-bit's nginx parser) match it, then key=value fields. */
const COMBINED =
  /^(?<addr>\S+) - (?<user>\S+) \[(?<time>[^\]]+)\] "(?<request>(?:[^"\\]|\\.)*)" (?<status>\d{3}) (?<bytes>\d+) "(?<referer>(?:[^"\\]|\\.)*)" "(?<ua>(?:[^"\\]|\\.)*)"(?<fields>.*)$/;

const record: AuditRecord = {
  time: '2026-11-23T08:57:42.000Z',
  requestId: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
  remoteAddr: '192.0.2.7',
  user: 'alice@example.com',
  uid: 'u-1',
  groups: ['oidc:dev', 'oidc:a,b'],
  authMethod: 'jwt',
  method: 'GET',
  target: '/api/v1/namespaces/default/pods?watch=true',
  protocol: 'HTTP/1.1',
  status: 200,
  upstreamStatus: 200,
  bytesSent: 1234,
  requestTime: 0.0123,
  kind: 'watch',
  referer: null,
  userAgent: 'kubectl/v1.32.4 (linux/amd64) kubernetes/abc',
  rejectReason: null,
  error: null,
  impersonatedUser: null,
  route: null,
  rule: null,
};

function fields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/ (\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) out[m[1]] = m[2].replace(/^"|"$/g, '');
  return out;
}

t.test('a proxied request', async (t) => {
  const line = formatCombined(record, new Date('2026-11-23T08:57:42Z'));
  const m = COMBINED.exec(line);
  t.ok(m, line);
  t.equal(m!.groups!.addr, '192.0.2.7');
  t.equal(m!.groups!.user, 'alice@example.com');
  t.equal(m!.groups!.time, '23/Nov/2026:08:57:42 +0000');
  t.equal(m!.groups!.request, 'GET /api/v1/namespaces/default/pods?watch=true HTTP/1.1');
  t.equal(m!.groups!.status, '200');
  t.equal(m!.groups!.bytes, '1234');
  t.equal(m!.groups!.referer, '-');
  t.same(fields(m!.groups!.fields), {
    rt: '0.012',
    ust: '200',
    kind: 'watch',
    auth: 'jwt',
    groups: 'oidc:dev,oidc:a\\x2Cb',
    rid: record.requestId,
    reason: '-',
  });
});

t.test('a rejected request: no user, a reason', async (t) => {
  const line = formatCombined({ ...record, user: null, groups: [], authMethod: null, status: 401, upstreamStatus: null, rejectReason: 'expired' });
  const m = COMBINED.exec(line)!;
  t.equal(m.groups!.user, '-');
  t.equal(m.groups!.status, '401');
  t.match(fields(m.groups!.fields), { ust: '-', auth: '-', reason: 'expired' });
});

t.test('hostile values cannot break the line apart', async (t) => {
  const line = formatCombined({
    ...record,
    user: 'eve "admin" x',
    target: '/x"y\\z\n',
    userAgent: 'ua"\u0001',
  });
  t.notMatch(line, /\n/);
  const m = COMBINED.exec(line)!;
  t.ok(m, line);
  t.equal(m.groups!.user, 'eve\\x20\\x22admin\\x22\\x20x');
  t.equal(m.groups!.request, 'GET /x\\x22y\\x5Cz\\x0A HTTP/1.1');
  t.equal(m.groups!.ua, 'ua\\x22\\x01');
});

t.test('credentials in the query never reach the line', async (t) => {
  t.equal(redactTarget('/oauth2/callback?code=abc123&state=xyz&iss=https%3A%2F%2Fidp'), '/oauth2/callback?code=[redacted]&state=[redacted]&iss=https%3A%2F%2Fidp');
  t.equal(redactTarget('/api?access_token=eyJ.x.y'), '/api?access_token=[redacted]');
  t.equal(redactTarget('/api/v1/pods?labelSelector=code%3Dx&watch=1'), '/api/v1/pods?labelSelector=code%3Dx&watch=1', 'only whole parameter names');
  t.equal(redactTarget('/codes/x'), '/codes/x');
});

t.test('json carries the same facts', async (t) => {
  const parsed = JSON.parse(formatJson(record));
  t.same(parsed, record);
});

t.test('time_local is nginx style', async (t) => {
  t.equal(timeLocal(new Date('2026-01-05T03:04:05Z')), '05/Jan/2026:03:04:05 +0000');
});
