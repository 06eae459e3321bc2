/**
 * zod issues in the words of someone editing a YAML file: "required",
 * "expected true or false, got "yes"", "unknown key; did you mean …".
 * Messages the schema writes itself win over these (zod's precedence).
 */
import type { z } from 'zod';
import { formatPath, type ConfigProblem } from './errors.js';
import { configKeys, patternOf } from './keys.js';

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping (key: value lines)',
  array: 'a list',
};

/** A short, safe rendering of what the user wrote. */
export function describeValue(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- only scalars are left (null, lists, mappings returned above)
  return String(value);
}

function typeHint(expected: string, input: unknown): string {
  if (expected === 'boolean' && typeof input === 'string') return ' (write true or false, without quotes)';
  if ((expected === 'number' || expected === 'int') && typeof input === 'string' && input.trim() !== '' && !Number.isNaN(Number(input))) {
    return ' (write the number without quotes)';
  }
  return '';
}

/** zod's per-parse error map: a message for every issue the schema left unworded. */
export const friendlyErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'required';
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      return `expected ${expected}, got ${describeValue(issue.input)}${typeHint(issue.expected, issue.input)}`;
    }
    case 'invalid_value': {
      const allowed = issue.values.map((v) => JSON.stringify(v));
      const want = allowed.length === 1 ? `must be ${allowed[0]}` : `must be one of ${allowed.join(', ')}`;
      return `${want}; got ${describeValue(issue.input)}`;
    }
    case 'too_small':
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return 'must not be empty';
      if (issue.origin === 'array') return `needs at least ${issue.minimum} item${Number(issue.minimum) === 1 ? '' : 's'}`;
      return `must be at least ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array') return `may have at most ${issue.maximum} items`;
      return `must be at most ${issue.maximum}`;
    case 'invalid_format':
      return issue.format === 'url' ? 'expected an absolute URL, e.g. https://host:port' : 'has the wrong form';
    case 'invalid_union':
      return `not one of the accepted forms; got ${describeValue(issue.input)}`;
    default:
      return undefined;
  }
};

/** Known keys that are not ours, with what to do instead. */
function specialKey(parent: string, key: string): string | undefined {
  if (key === 'egressSelectorType' && parent === 'authentication.jwt[].issuer') {
    return 'kube-apiserver\'s egress selector has no counterpart here: the proxy reaches the issuer directly';
  }
  if (parent === '' && (key === 'apiVersion' || key === 'kind')) {
    return "this is kube-front-proxy's configuration, not a kube-apiserver AuthenticationConfiguration; put its jwt list under authentication.jwt";
  }
  return undefined;
}

/** Levenshtein distance, case-insensitive: "adress" is one edit from "address". */
function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

/** The message for an unknown key: the likely typo, or where the key belongs, or what is allowed here. */
export function unknownKeyMessage(parent: string, key: string): string {
  const special = specialKey(parent, key);
  if (special) return `unknown key; ${special}`;
  const siblings = configKeys().filter((k) => k.parent === parent).map((k) => k.name);
  const [best] = siblings
    .map((name) => ({ name, d: distance(key, name) }))
    .filter(({ d }) => d <= Math.max(1, Math.floor(key.length / 3)))
    .sort((x, y) => x.d - y.d);
  if (best) return `unknown key; did you mean "${best.name}"?`;
  const elsewhere = configKeys().filter((k) => k.name === key && k.parent !== parent);
  if (elsewhere.length) return `unknown key here; "${key}" belongs at ${elsewhere.map((k) => k.path).join(' or ')}`;
  return `unknown key; expected one of: ${siblings.join(', ')}`;
}

/** Every zod issue as problems, one per unknown key. */
export function issuesToProblems(issues: readonly z.core.$ZodIssue[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({ path: formatPath([...issue.path, key]), message: unknownKeyMessage(patternOf(issue.path), key) });
      }
    } else {
      problems.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  return problems;
}
