/**
 * File paths in the configuration: resolved against the config file's folder
 * (so the proxy means the same files whatever its working directory), and
 * checked at start, so a missing certificate is a config error naming its key
 * rather than a TLS failure at the first request.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ClientCAFileError, parseClientCABundle } from './ca-bundle.js';
import { formatPath, type ConfigProblem } from './errors.js';
import { configKeys } from './keys.js';

/** Key patterns holding a file path, read off the schema (`typeName: 'file path'`). */
function fileKeyPatterns(): string[] {
  return configKeys()
    .filter((k) => k.type === 'file path')
    .map((k) => k.path);
}

type Visit = (holder: Record<string, unknown>, key: string, value: string, path: (string | number)[]) => void;

/**
 * Calls `visit` for every string at `pattern` in `data`, expanding `[]` over
 * list items. Tolerates any shape, so it can run on input the schema refused.
 */
function visitStrings(data: unknown, pattern: string, visit: Visit): void {
  const segments = pattern.split('.');
  const step = (node: unknown, i: number, path: (string | number)[]): void => {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return;
    const holder = node as Record<string, unknown>;
    const segment = segments[i];
    const key = segment.endsWith('[]') ? segment.slice(0, -2) : segment;
    const value = holder[key];
    if (segment.endsWith('[]')) {
      if (Array.isArray(value)) value.forEach((item, index) => step(item, i + 1, [...path, key, index]));
    } else if (i === segments.length - 1) {
      if (typeof value === 'string' && value !== '') visit(holder, key, value, [...path, key]);
    } else {
      step(value, i + 1, [...path, key]);
    }
  };
  step(data, 0, []);
}

/** Why a file cannot be used, or undefined when it can. */
function fileProblem(absolute: string, written: string): string | undefined {
  const hint = isAbsolute(written) ? '' : " (paths are relative to the config file's folder)";
  try {
    if (statSync(absolute).isDirectory()) return `${absolute} is a folder, expected a file`;
    accessSync(absolute, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return `file not found: ${absolute}${hint}`;
    if (code === 'EACCES' || code === 'EPERM') return `no permission to read ${absolute}`;
    return `cannot read ${absolute} (${code ?? String(err)})`;
  }
}

/** The audit log is appended to: the file must be writable, or its folder must exist and be writable. */
function auditPathProblem(absolute: string): string | undefined {
  try {
    const stat = statSync(absolute, { throwIfNoEntry: false });
    if (stat?.isDirectory()) return `${absolute} is a folder; name a file in it, or "-" for stdout`;
    if (stat) {
      accessSync(absolute, constants.W_OK);
      return undefined;
    }
    // A missing folder throws ENOENT here; a file posing as the folder already threw ENOTDIR above.
    accessSync(dirname(absolute), constants.W_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return `folder not found: ${dirname(absolute)} (create it, or write "-" for stdout)`;
    if (code === 'EACCES' || code === 'EPERM') return `no permission to write ${absolute}`;
    return `cannot write ${absolute} (${code ?? String(err)})`;
  }
}

/**
 * Problems with the files the configuration names: each file key must name a
 * readable file, and audit.path a writable place. Runs on the raw input, so
 * these are reported alongside schema problems in the same run.
 */
export function checkFiles(input: unknown, baseDir: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const pattern of fileKeyPatterns()) {
    visitStrings(input, pattern, (_holder, _key, value, path) => {
      const message = fileProblem(resolve(baseDir, value), value);
      if (message) problems.push({ path: formatPath(path), message });
    });
  }
  // A client CA bundle that cannot verify client certificates is refused here, not at the first handshake.
  visitStrings(input, 'listen.tls.clientCAFile', (_holder, _key, value, path) => {
    const absolute = resolve(baseDir, value);
    if (fileProblem(absolute, value)) return;
    try {
      parseClientCABundle(readFileSync(absolute, 'latin1'));
    } catch (err) {
      if (!(err instanceof ClientCAFileError)) throw err;
      problems.push({ path: formatPath(path), message: `${absolute}: ${err.message}` });
    }
  });
  visitStrings(input, 'audit.path', (_holder, _key, value, path) => {
    if (value === '-') return;
    const message = auditPathProblem(resolve(baseDir, value));
    if (message) problems.push({ path: formatPath(path), message });
  });
  return problems;
}

/**
 * Rewrites every file path (and audit.path unless "-") in a parsed config to
 * an absolute path, in place: call it before freezing.
 */
export function resolvePaths(config: object, baseDir: string): void {
  for (const pattern of fileKeyPatterns()) {
    visitStrings(config, pattern, (holder, key, value) => {
      holder[key] = resolve(baseDir, value);
    });
  }
  visitStrings(config, 'audit.path', (holder, key, value) => {
    if (value !== '-') holder[key] = resolve(baseDir, value);
  });
}
