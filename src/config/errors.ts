/**
 * Configuration errors: every problem found in one run, each naming the key
 * and the fix, so a user fixes the whole file at once (oauth2-proxy's
 * validation package does the same).
 */

/** One thing wrong with the configuration. */
export interface ConfigProblem {
  /** The key, e.g. `upstream.clientCertFile` or `authentication.jwt[0].issuer.url`; "" for the file as a whole. */
  readonly path: string;
  /** What is wrong and how to fix it. */
  readonly message: string;
}

/**
 * The configuration cannot be used. Thrown by `loadConfig` and `parseConfig`
 * with every problem found, never just the first.
 *
 * @example
 * ```ts
 * try { await loadConfig(file) } catch (err) {
 *   if (err instanceof ConfigError) console.error(formatConfigError(err, file));
 * }
 * ```
 */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG_INVALID';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${problemLine(p)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = Object.freeze([...problems]);
  }
}

/** `<path>: <message>`, or just the message for the file as a whole. */
function problemLine(problem: ConfigProblem): string {
  return problem.path ? `${problem.path}: ${problem.message}` : problem.message;
}

/**
 * The text to show a user: a heading naming the file, then one line per
 * problem, `<path>: <message>`.
 *
 * @example
 * ```text
 * config.yaml: 2 problems
 *   listen.adress: unknown key; did you mean "address"?
 *   upstream.clientCertFile: file not found: /etc/kfp/certs/x.crt (paths are relative to the config file's folder)
 * ```
 */
export function formatConfigError(err: ConfigError, configPath: string): string {
  const count = err.problems.length === 1 ? '1 problem' : `${err.problems.length} problems`;
  return [`${configPath}: ${count}`, ...err.problems.map((p) => `  ${problemLine(p)}`)].join('\n');
}

/** `["authentication", "jwt", 0, "issuer"]` → `authentication.jwt[0].issuer`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out ? `.${String(segment)}` : String(segment);
  }
  return out;
}
