/**
 * kube's semver library at the version kube's base environment enables
 * (k8s.io/apiserver pkg/cel/library/semverlib.go, SemverVersion(1): the
 * normalizing `semver(s, true)` and `isSemver(s, true)`), on blang/semver v4's
 * Parse and Compare, ported here: numeric parts without leading zeros,
 * pre-release identifiers compared numerically or by byte, build metadata
 * checked and ignored in comparisons.
 */
import type { Environment } from '@marcbachmann/cel-js';
import { KubeValue, registerKubeType } from './opaque.js';

const NUMBERS = /^[0-9]*$/;
const ALPHANUM = /^[0-9A-Za-z-]*$/;
const MAX_UINT64 = (1n << 64n) - 1n;

/** A pre-release identifier: a number, or a string of [0-9A-Za-z-]. */
type Pre = bigint | string;

/** cel-go's kubernetes.Semver: a blang semver.Version. */
export class Semver extends KubeValue {
  constructor(
    readonly major: bigint,
    readonly minor: bigint,
    readonly patch: bigint,
    readonly pre: readonly Pre[],
  ) {
    super();
  }
  /** blang's Version.EQ: equal precedence (build metadata ignored). */
  override equals(other: KubeValue): boolean {
    return other instanceof Semver && compare(this, other) === 0;
  }
}

const sign = <T extends bigint | string | number>(a: T, b: T) => (a === b ? 0 : a > b ? 1 : -1);

/** blang's Version.Compare: -1, 0 or 1 by precedence. */
export function compare(v: Semver, o: Semver): number {
  for (const [a, b] of [[v.major, o.major], [v.minor, o.minor], [v.patch, o.patch]] as const) if (a !== b) return sign(a, b);
  if (v.pre.length === 0 || o.pre.length === 0) return sign(o.pre.length, v.pre.length);
  for (let i = 0; i < v.pre.length && i < o.pre.length; i++) {
    const [a, b] = [v.pre[i], o.pre[i]];
    // A numeric identifier is lower than an alphanumeric one.
    if (typeof a !== typeof b) return typeof a === 'bigint' ? -1 : 1;
    if (a !== b) return sign(a, b);
  }
  return sign(v.pre.length, o.pre.length);
}

/** strconv.ParseUint(s, 10, 64) of a string already known to be digits. */
function uint64(s: string, what: string): bigint {
  if (s === '') throw new Error(`strconv.ParseUint: parsing "": invalid syntax (${what})`);
  const n = BigInt(s);
  if (n > MAX_UINT64) throw new Error(`strconv.ParseUint: parsing ${JSON.stringify(s)}: value out of range`);
  return n;
}

/** A version number: digits, no leading zero. */
function number(s: string, what: string): bigint {
  if (!NUMBERS.test(s)) throw new Error(`Invalid character(s) found in ${what} number ${JSON.stringify(s)}`);
  if (s.length > 1 && s[0] === '0') throw new Error(`${what[0].toUpperCase()}${what.slice(1)} number must not contain leading zeroes ${JSON.stringify(s)}`);
  return uint64(s, what);
}

/** Go's strings.SplitN(s, sep, n): at most n parts, the last holding the rest. */
function splitN(s: string, sep: string, n: number): string[] {
  const parts = s.split(sep);
  return parts.length <= n ? parts : [...parts.slice(0, n - 1), parts.slice(n - 1).join(sep)];
}

/** blang's semver.Parse. */
export function parseSemver(s: string): Semver {
  if (s === '') throw new Error('Version string empty');
  const parts = splitN(s, '.', 3);
  if (parts.length !== 3) throw new Error('No Major.Minor.Patch elements found');
  const major = number(parts[0], 'major');
  const minor = number(parts[1], 'minor');
  let patchText = parts[2];
  let build: string[] = [];
  let prerelease: string[] = [];
  const plus = patchText.indexOf('+');
  if (plus !== -1) [build, patchText] = [patchText.slice(plus + 1).split('.'), patchText.slice(0, plus)];
  const dash = patchText.indexOf('-');
  if (dash !== -1) [prerelease, patchText] = [patchText.slice(dash + 1).split('.'), patchText.slice(0, dash)];
  const patch = number(patchText, 'patch');
  const pre = prerelease.map((p): Pre => {
    if (p === '') throw new Error('Prerelease is empty');
    if (NUMBERS.test(p)) {
      if (p.length > 1 && p[0] === '0') throw new Error(`Numeric PreRelease version must not contain leading zeroes ${JSON.stringify(p)}`);
      return uint64(p, 'prerelease');
    }
    if (!ALPHANUM.test(p)) throw new Error(`Invalid character(s) found in prerelease ${JSON.stringify(p)}`);
    return p;
  });
  for (const b of build) {
    if (b === '') throw new Error('Build meta data is empty');
    if (!ALPHANUM.test(b)) throw new Error(`Invalid character(s) found in build meta data ${JSON.stringify(b)}`);
  }
  return new Semver(major, minor, patch, pre);
}

/** kube's normalizeAndParse: no leading 'v', leading zeros dropped, missing minor and patch as 0. */
function normalizeAndParse(input: string): Semver {
  const parts = splitN(input.startsWith('v') ? input.slice(1) : input, '.', 3).map((p) => {
    if (p.length <= 1) return p;
    const trimmed = p.replace(/^0+/, '');
    return trimmed === '' || !/^[0-9]/.test(trimmed) ? `0${trimmed}` : trimmed;
  });
  if (parts.length < 3) {
    if (/[+-]/.test(parts[parts.length - 1])) throw new Error('short version cannot contain PreRelease/Build meta data');
    while (parts.length < 3) parts.push('0');
  }
  return parseSemver(parts.join('.'));
}

const parse = (s: string, normalize: boolean) => (normalize ? normalizeAndParse(s) : parseSemver(s));

function isSemver(s: string, normalize: boolean): boolean {
  try {
    parse(s, normalize);
    return true;
  } catch {
    return false;
  }
}

/** types.Int(v.Major) of a uint64: Go's conversion wraps past int64. */
const int64 = (n: bigint) => BigInt.asIntN(64, n);

export function registerSemver(env: Environment): void {
  registerKubeType(env, 'kubernetes.Semver', Semver);
  env.registerFunction('semver(string): kubernetes.Semver', (s: string) => parse(s, false));
  env.registerFunction('semver(string, bool): kubernetes.Semver', parse);
  env.registerFunction('isSemver(string): bool', (s: string) => isSemver(s, false));
  env.registerFunction('isSemver(string, bool): bool', isSemver);
  env.registerFunction('kubernetes.Semver.isGreaterThan(kubernetes.Semver): bool', (a: Semver, b: Semver) => compare(a, b) === 1);
  env.registerFunction('kubernetes.Semver.isLessThan(kubernetes.Semver): bool', (a: Semver, b: Semver) => compare(a, b) === -1);
  env.registerFunction('kubernetes.Semver.compareTo(kubernetes.Semver): int', (a: Semver, b: Semver) => BigInt(compare(a, b)));
  env.registerFunction('kubernetes.Semver.major(): int', (v: Semver) => int64(v.major));
  env.registerFunction('kubernetes.Semver.minor(): int', (v: Semver) => int64(v.minor));
  env.registerFunction('kubernetes.Semver.patch(): int', (v: Semver) => int64(v.patch));
}
