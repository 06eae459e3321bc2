// No token, secret or cookie value ever appears in any log: run real traffic with
// valid, invalid and hostile credentials at trace level, then scan everything written.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { createLogger } from '../../src/observe/logger.js';
import { startStack, untilReady } from '../helpers/stack.js';

const COMBINED = /^\S+ - \S+ \[[^\]]+\] "(?:[^"\\]|\\.)*" \d{3} \d+ "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*" rt=\S+ ust=\S+ kind=\S+ auth=\S+ groups="[^"]*" rid=\S+ reason=\S+$/;

t.test('logs never contain credentials', async (t) => {
  const dir = t.testdir();
  const auditFile = join(dir, 'audit.log');
  const logFile = join(dir, 'proxy.log');
  const logger = createLogger('trace', logFile);
  const stack = await startStack(t, {
    logger,
    configure: (c) => ({ ...c, audit: { path: auditFile, format: 'combined' } }),
  });
  await untilReady(stack.proxy);

  const good = await stack.login();
  const expired = await stack.mint({ exp: Math.floor(Date.now() / 1000) - 60 });
  const wrongAudience = await stack.mint({ aud: 'someone-else' });
  const garbage = 'not.a.jwt-secret-garbage-value';
  const cookie = 'session=cookie-secret-value-123';
  const secrets = [good, expired, wrongAudience, garbage, 'cookie-secret-value-123', 'hunter2-basic'];

  const statuses: number[] = [];
  for (const [authorization, path] of [
    [`Bearer ${good}`, '/api/v1/namespaces/default/pods'],
    [`Bearer ${expired}`, '/api'],
    [`Bearer ${wrongAudience}`, '/api'],
    [`Bearer ${garbage}`, '/api'],
    [`Basic ${Buffer.from('user:hunter2-basic').toString('base64')}`, '/api'],
  ] as const) {
    const res = await stack.fetch(path, { headers: { authorization, cookie } });
    statuses.push(res.statusCode);
    await res.body.dump();
  }
  t.same(statuses, [200, 401, 401, 401, 401]);

  await stack.proxy.close(); // flushes the audit stream
  logger.flush();
  await new Promise((r) => setTimeout(r, 200));
  const audit = await readFile(auditFile, 'utf8');
  const logs = await readFile(logFile, 'utf8');

  const lines = audit.trim().split('\n');
  t.equal(lines.length, 5, 'one audit line per request');
  for (const line of lines) t.match(line, COMBINED, 'parses as nginx combined plus fields');
  t.match(lines[0], / - demo@example\.com \[/);
  t.match(lines[1], /reason=expired$/);
  t.match(lines[2], /reason=bad_audience$/);

  for (const secret of secrets) {
    t.notOk(audit.includes(secret), 'audit log holds no credential');
    t.notOk(logs.includes(secret), 'operational log holds no credential');
  }
  t.notMatch(audit + logs, /eyJ[\w-]{10,}\.[\w-]{10,}\./, 'nothing shaped like a JWT');
  t.ok(logs.length > 0, 'the operational log was written (the scan is not vacuous)');
});
