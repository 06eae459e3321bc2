import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configKeys } from '../../src/config/keys.js';
import { updateReference } from '../../src/config/reference.js';

const DOC = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));

t.test('docs/configuration.md is generated from the current schema', async (t) => {
  const current = readFileSync(DOC, 'utf8');
  const fresh = updateReference(current);
  if (process.env['UPDATE_DOCS'] && fresh !== current) writeFileSync(DOC, fresh);
  else t.equal(current, fresh, 'stale: run UPDATE_DOCS=1 npx tap test/config/reference.test.ts');
});

t.test('every key has a row and a description', async (t) => {
  const doc = readFileSync(DOC, 'utf8');
  for (const key of configKeys()) {
    const row = key.parent === '' ? `### \`${key.path}\`` : `| \`${key.path}\` |`;
    t.ok(doc.includes(row), key.path);
    t.not(key.description, '', `${key.path} has a .describe()`);
  }
});
