/**
 * From a YAML file (or an object built in code) to a validated, frozen Config.
 * Every problem is collected before anything is thrown: YAML syntax, then the
 * schema and the files it names, all in one ConfigError.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, type ConfigProblem } from './errors.js';
import { checkFiles, resolvePaths } from './files.js';
import { configKeys, requiredLeafKeys } from './keys.js';
import { describeValue, friendlyErrorMap, issuesToProblems } from './problems.js';
import { configSchema, type Config } from './schema.js';

/** Options for {@link parseConfig}. */
export interface ParseOptions {
  /**
   * Check that every file the configuration names exists and is readable, and
   * that audit.path can be written. Default true; false only validates the
   * shape (for example files written for another machine).
   */
  readonly checkFiles?: boolean;
}

/**
 * Reads, validates and freezes the configuration file.
 *
 * Relative paths in it are resolved against the file's folder.
 *
 * @throws {ConfigError} with every problem found, each naming its key.
 * @example
 * ```ts
 * const config = await loadConfig('config/kube-apiserver.yaml');
 * config.upstream.clientCertFile; // '/abs/.../front-proxy-client.crt'
 * ```
 */
export async function loadConfig(file: string): Promise<Config> {
  const absolute = resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '', message: `cannot read ${absolute}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return parseConfig(parseYaml(text), dirname(absolute));
}

/**
 * Validates a configuration given as an object (as YAML would parse), applies
 * defaults, resolves relative paths against `baseDir` and deep-freezes the
 * result. The quick start builds its configuration this way.
 *
 * @throws {ConfigError} with every problem found.
 */
export function parseConfig(input: unknown, baseDir: string, options: ParseOptions = {}): Config {
  const base = resolve(baseDir);
  const problems: ConfigProblem[] = [];
  const result = configSchema.safeParse(input, { error: friendlyErrorMap });
  if (!result.success) problems.push(...issuesToProblems(result.error.issues));
  // On the raw input, so a missing file is reported even when other keys are wrong.
  if (options.checkFiles ?? true) problems.push(...checkFiles(input, base));
  if (!result.success || problems.length > 0) throw new ConfigError(bySection(problems));
  resolvePaths(result.data, base);
  return deepFreeze(result.data);
}

/**
 * Problems grouped by top-level section in schema order (file problems join
 * their section); the whole file and unknown top-level keys come first. Stable
 * within a section, so zod's order is kept there.
 */
function bySection(problems: ConfigProblem[]): ConfigProblem[] {
  const order = configKeys()
    .filter((k) => k.parent === '')
    .map((k) => k.name);
  const rank = (p: ConfigProblem) => order.indexOf(p.path.split(/[.[]/)[0]);
  return problems.map((p, i) => ({ p, i })).sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i).map(({ p }) => p);
}

/** YAML text → plain data, or a ConfigError with line and column. */
export function parseYaml(text: string): unknown {
  const lineCounter = new LineCounter();
  // uniqueKeys: a key written twice would silently let the second win.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((err) => {
        const { line, col } = lineCounter.linePos(err.pos[0]);
        return { path: '', message: `not valid YAML at line ${line}, column ${col}: ${err.message}` };
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError([{ path: '', message: `not usable YAML: ${(err as Error).message}` }]);
  }
  if (data === null || data === undefined) {
    throw new ConfigError([{ path: '', message: `the file is empty; write at least ${requiredLeafKeys().join(', ')} (see config/quickstart.yaml)` }]);
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([{ path: '', message: `expected a mapping of keys (listen:, upstream:, …) at the top, got ${describeValue(data)}` }]);
  }
  return data;
}

/** Freezes objects and arrays all the way down: no stage can change the configuration another stage reads. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
