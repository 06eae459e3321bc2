import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { createStaticTokenAuthenticator } from '../../src/authn/static-tokens.js';
import { checkCredentialFiles } from '../../src/config/credential-files.js';
import { parseTokenFile } from '../../src/config/token-file.js';

const users = (text: string) => Object.fromEntries(parseTokenFile(text).tokens);

t.test('kube columns: token,user,uid[,groups]; extra columns ignored; groups split on commas only', async (t) => {
  t.same(users('t1,alice,u1\n'), { t1: { username: 'alice', uid: 'u1', groups: [] } });
  t.same(users('t2,bob,,"dev,ops",ignored,more\n'), { t2: { username: 'bob', uid: '', groups: ['dev', 'ops'] } });
  // An empty group (trailing comma, empty column) grants nothing in kube and cannot be forwarded: dropped.
  t.same(users('t3,carol,u3,"a,,b,"\nt4,dan,u4,\n'), { t3: { username: 'carol', uid: 'u3', groups: ['a', 'b'] }, t4: { username: 'dan', uid: 'u4', groups: [] } });
});

t.test("Go encoding/csv rules: quotes, doubled quotes, CRLF, empty lines, no comments, no trimming", async (t) => {
  t.same(users('"a""b",u,1\r\n\r\n\n#c,v,2\n'), { 'a"b': { username: 'u', uid: '1', groups: [] }, '#c': { username: 'v', uid: '2', groups: [] } });
  // CRLF inside a quoted field is read as LF, as Go does.
  t.same(Object.keys(users('"x\r\ny",u,1\n')), ['x\ny']);
  // A BOM is not stripped by Go: it is part of the first token.
  t.same(Object.keys(users('\ufefftok,u,1\n')), ['\ufefftok']);
});

t.test('errors name the line and never quote the token', async (t) => {
  const bare = parseTokenFile('ok,u,1\nse"cret,u,1\n');
  t.equal(bare.errors.length, 1);
  t.equal(bare.errors[0].line, 2);
  t.match(bare.errors[0].message, /bare "/);
  t.notMatch(bare.errors[0].message, /se"?cret/);
  t.match(parseTokenFile('"secret"x,u,1\n').errors[0].message, /after the closing quote/);
  t.match(parseTokenFile('"secret,u,1\n').errors[0].message, /never closed/);
  t.same(parseTokenFile('a,b,c\nonly,two\n').errors, [{ line: 2, message: 'has 2 columns; write at least token,user,uid (uid may be empty: token,user,)' }]);
  t.match(parseTokenFile('tok,,1\n').errors[0].message, /empty user name/);
  t.match(parseTokenFile('tok,u,1,"a, b"\n').errors[0].message, /" b" has a space/);
});

t.test('empty and repeated tokens are warnings; the later line wins, as in kube', async (t) => {
  const parsed = parseTokenFile(',u,1\ntok,first,1\ntok,second,2\n');
  t.same(parsed.errors, []);
  t.same(parsed.warnings.map((w) => w.line), [1, 3]);
  t.equal(parsed.tokens.get('tok')?.username, 'second');
});

function logged() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

t.test('the authenticator: a known token is the file\'s identity, an unknown one is absent; a warning at start; the token never logged', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kfp-static-'));
  const file = join(dir, 'tokens.csv');
  writeFileSync(file, 'secret-token-1,alice,uid-1,"dev,ops"\nsecret-token-2,bob,\n');
  const { logger, lines } = logged();
  const auth = await createStaticTokenAuthenticator(file, logger);
  t.ok(auth.ready());
  t.same(await auth.authenticateToken('secret-token-1'), {
    kind: 'authenticated',
    identity: { username: 'alice', uid: 'uid-1', groups: ['dev', 'ops'], extra: {}, authMethod: 'static_token' },
  });
  t.same(await auth.authenticateToken('secret-token-2'), { kind: 'authenticated', identity: { username: 'bob', groups: [], extra: {}, authMethod: 'static_token' } });
  t.same(await auth.authenticateToken('secret-token-3'), { kind: 'absent' });
  t.same(await auth.authenticateToken('secret-token-1 '), { kind: 'absent' });
  t.ok(lines.some((l) => l.level === 40 && /development and kind only/.test(String(l.msg))));
  t.notMatch(JSON.stringify(lines), /secret-token/);
  await auth.close();

  writeFileSync(file, 'x,y\n');
  await t.rejects(createStaticTokenAuthenticator(file, logger), /authentication\.staticTokenFile: .* line 1: has 2 columns/);
});

t.test('checkCredentialFiles: an unparseable line is a problem under authentication.staticTokenFile with its line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kfp-static-'));
  const file = join(dir, 'tokens.csv');
  writeFileSync(file, 'ok,u,1\nbad"quote,u,1\n');
  const problems = checkCredentialFiles({ authentication: { staticTokenFile: file } });
  t.equal(problems.length, 1);
  t.equal(problems[0].path, 'authentication.staticTokenFile');
  t.match(problems[0].message, `${file} line 2: `);
  t.same(checkCredentialFiles({ authentication: { staticTokenFile: join(dir, 'missing.csv') } }), []);
});
