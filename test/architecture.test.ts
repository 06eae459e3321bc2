// The layering of src/ (docs/architecture.md "Layers"): every import points down
// or stays inside its own folder. A new credential goes in authn/ (or login/ for a
// browser one), a new upstream mode or route type in proxy/, what the caller may ask
// of the upstream in authz/; none may reach up.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/** Floors, lowest first; folders on one floor may not import each other. */
const FLOORS: ReadonlyArray<readonly string[]> = [
  ['cel'],
  ['config'],
  ['request'],
  ['tls', 'observe'],
  ['audit'],
  ['authn', 'authz', 'route'],
  ['login', 'proxy'],
  ['.'], // the assembly: pipeline, server, listener, command, workers
];
const floorOf = (folder: string) => FLOORS.findIndex((f) => f.includes(folder));

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

/** The first folder under src/ a path is in ('.' for the files at its top). */
const folderOf = (path: string) => {
  const parts = relative(SRC, path).split('/');
  return parts.length === 1 ? '.' : parts[0];
};

t.test('every folder of src/ has a floor', async (t) => {
  for (const file of sources(SRC)) t.not(floorOf(folderOf(file)), -1, relative(SRC, file));
});

t.test('imports point down, never up or sideways', async (t) => {
  const wrong: string[] = [];
  for (const file of sources(SRC)) {
    const from = folderOf(file);
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(SRC)) {
        wrong.push(`${relative(SRC, file)} imports ${spec} (outside src/: dev and test code must not ship)`);
        continue;
      }
      const to = folderOf(target);
      if (to === from) continue;
      if (floorOf(to) >= floorOf(from)) wrong.push(`${relative(SRC, file)} (${from}) imports ${spec} (${to})`);
    }
  }
  t.same(wrong, [], 'no import points up or sideways');
});
