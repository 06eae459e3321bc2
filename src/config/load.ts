/**
 * From a YAML file (or an object built in code) to a validated, frozen Config.
 * Every problem is collected before anything is thrown: YAML syntax, then the
 * schema and the files it names, all in one ConfigError.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, type ConfigProblem } from './errors.js';
import { checkCredentialFiles } from './credential-files.js';
import { checkFiles, resolvePaths } from './files.js';
import { configKeys, requiredLeafKeys } from './keys.js';
import { describeValue, friendlyErrorMap, issuesToProblems } from './problems.js';
import { AuthenticationConfigError, readAuthenticationConfigSync, sessionPairingProblems, type AuthenticationConfiguration } from './authentication-config.js';
import { configSchema, type Config, type SessionConfig } from './schema.js';

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
  const authConfig = options.checkFiles ?? true ? readConfigFile(input, base, problems, result.data?.authentication.session) : undefined;
  if (!result.success || problems.length > 0) throw new ConfigError(bySection(problems));
  resolvePaths(result.data, base);
  // The credential files' contents (token CSV, webhook kubeconfig), once their paths are absolute.
  const credentialProblems = options.checkFiles ?? true ? checkCredentialFiles(result.data) : [];
  if (credentialProblems.length > 0) throw new ConfigError(bySection(credentialProblems));
  // The file's jwt list replaces authentication.jwt (empty when configFile is set): every reader of jwt[] sees the file's.
  if (authConfig) result.data.authentication.jwt = [...authConfig.jwt];
  return deepFreeze(result.data);
}

const CONFIG_FILE_KEY = 'authentication.configFile';

/**
 * authentication.configFile, read and validated at start: its problems are
 * this key's, each naming the file and the key inside it. Skipped when the
 * file itself is missing (checkFiles reported that already).
 */
function readConfigFile(input: unknown, base: string, problems: ConfigProblem[], session: SessionConfig | undefined): AuthenticationConfiguration | undefined {
  const written = (input as { authentication?: { configFile?: unknown } } | undefined)?.authentication?.configFile;
  if (typeof written !== 'string' || written === '' || problems.some((p) => p.path === CONFIG_FILE_KEY)) return undefined;
  const file = resolve(base, written);
  try {
    const config = readAuthenticationConfigSync(file);
    problems.push(...sessionPairingProblems(config.jwt, session).map((message) => ({ path: CONFIG_FILE_KEY, message: `${file}: ${message}` })));
    return config;
  } catch (err) {
    if (!(err instanceof AuthenticationConfigError)) throw err;
    problems.push(...configFileProblems(file, err));
    return undefined;
  }
}

/** `authentication.configFile: /etc/kfp/auth.yaml: jwt[0].claimMappings.username: required`. */
export function configFileProblems(file: string, err: AuthenticationConfigError): ConfigProblem[] {
  return err.problems.map((p) => ({ path: CONFIG_FILE_KEY, message: `${file}: ${p.path ? `${p.path}: ` : ''}${p.message}` }));
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
    throw new ConfigError([{ path: '', message: `the file is empty; write at least ${requiredLeafKeys().join(', ')} and upstream.url (or routes) (see config/quickstart.yaml)` }]);
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
