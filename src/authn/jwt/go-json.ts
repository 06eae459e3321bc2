/**
 * How Go's encoding/json decodes a JWT payload into go-oidc's typed idToken
 * (github.com/coreos/go-oidc v2.5.0 oidc.go, the version kube-apiserver 1.37
 * uses): struct fields match keys case-insensitively (`EXP` fills exp), every
 * matching key is decoded into the field in turn, null leaves a string as it
 * was, and a value of the wrong type under any of them fails the whole token.
 */

/**
 * Go's case folding for field names (bytes.EqualFold): ASCII case, plus the
 * two non-ASCII letters that fold onto ASCII ones (ſ → s, K → k).
 */
export function foldKey(key: string): string {
  return key.replace(/\u017f/g, 's').replace(/\u212a/g, 'k').replace(/[A-Z]/g, (c) => c.toLowerCase());
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Returned by a field decoder where Go's json.Unmarshal would fail. */
export const FAIL = Symbol('json.Unmarshal fails');

/** How one Go field type takes a JSON value, given what the field already holds. */
export type FieldDecoder<T> = (value: unknown, held: T) => T | typeof FAIL;

/**
 * json.Unmarshal into one struct field: Go decodes every key that folds to
 * `name`, in order, into the same field, so `exp: null, EXP: 1` fails on the
 * null even though the last key is good, and `iss: "a", ISS: null` stays "a".
 * FAIL when any of them fails; `zero` when there is none.
 */
export function decodeField<T>(object: Readonly<Record<string, unknown>>, name: string, zero: T, decode: FieldDecoder<T>): T | typeof FAIL {
  let held = zero;
  for (const key of Object.keys(object)) {
    if (foldKey(key) !== name) continue;
    const next = decode(object[key], held);
    if (next === FAIL) return FAIL;
    held = next;
  }
  return held;
}

/** A Go string field: a string is itself, null leaves the field as it was, anything else fails. */
export const goStringField: FieldDecoder<string> = (value, held) => (value === null ? held : typeof value === 'string' ? value : FAIL);

/** A Go string in a fresh value (a map element): null or absent is "", a string is itself, anything else fails. */
export function goString(value: unknown): string | undefined {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : undefined;
}

/** A struct of string fields decoded from one JSON value (null leaves it zero); undefined when Go would fail. */
export function goStringStruct<K extends string>(value: unknown, names: readonly K[]): Record<K, string> | undefined {
  const result = {} as Record<K, string>;
  for (const name of names) result[name] = '';
  if (value === null) return result;
  if (!isObject(value)) return undefined;
  for (const name of names) {
    const decoded = decodeField(value, name, '', goStringField);
    if (decoded === FAIL) return undefined;
    result[name] = decoded;
  }
  return result;
}

/** Go's json.Number accepts a number, or a string holding JSON number syntax. */
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * go-oidc's jsonTime: a JSON number or numeric string, in whole seconds
 * (a fraction is cut off). `null` fails (json.Number("") parses as neither
 * int nor float), absent is the zero time (-62135596800 s, year 1).
 */
export function goTime(value: unknown): number | undefined {
  if (value === undefined) return ZERO_TIME;
  if (typeof value === 'number') return int64(value);
  if (typeof value === 'string' && JSON_NUMBER.test(value)) return int64(Number(value));
  return undefined;
}

const TWO_TO_63 = 2 ** 63;

/**
 * go-oidc's jsonTime: Int64(), else int64(Float64()). A number beyond float64 (`1e400`,
 * Infinity to JavaScript) is ParseFloat's range error: refused. One beyond int64 is
 * converted as Go on amd64 converts it, to the smallest int64: a time long past, so
 * `exp: 1e20` is expired rather than never.
 */
function int64(value: number): number | undefined {
  if (!Number.isFinite(value)) return undefined;
  return value >= TWO_TO_63 || value < -TWO_TO_63 ? -TWO_TO_63 : Math.trunc(value);
}

/** Go's zero time.Time in Unix seconds. */
export const ZERO_TIME = -62_135_596_800;

/** go-oidc's audience: a string is one audience, else a list of strings (null elements are ""); null is [""]. */
export function goAudience(value: unknown): string[] | undefined {
  if (value === undefined) return [];
  if (value === null) return [''];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((a) => a === null || typeof a === 'string')) return value.map((a: string | null) => a ?? '');
  return undefined;
}

/** One entry of `_claim_sources`. */
export interface ClaimSource {
  readonly endpoint: string;
  readonly accessToken: string;
}

/** The claims go-oidc decodes with types, as it decodes them. */
export interface StandardClaims {
  readonly iss: string;
  readonly aud: readonly string[];
  /** Unix seconds. */
  readonly exp: number;
  /** Unix seconds; undefined when absent or null (a nil *jsonTime). */
  readonly nbf: number | undefined;
  /** Claim name → source name, from `_claim_names`. */
  readonly claimNames: Readonly<Record<string, string>>;
  /** Source name → endpoint, from `_claim_sources`. */
  readonly claimSources: Readonly<Record<string, ClaimSource>>;
}

/**
 * Decodes the payload as go-oidc's Verify does (json.Unmarshal into idToken,
 * then the distributed-claims check), or undefined when Go would fail: a
 * wrongly typed iss, sub, aud, exp, iat, nbf, nonce, at_hash, _claim_names or
 * _claim_sources, a claim name with an empty source, or a source that is not there.
 */
export function decodeStandardClaims(payload: Readonly<Record<string, unknown>>): StandardClaims | undefined {
  const iss = decodeField(payload, 'iss', '', goStringField);
  const aud = decodeField(payload, 'aud', [] as readonly string[], (v) => goAudience(v) ?? FAIL);
  // jsonTime has its own UnmarshalJSON, which Go calls for null too: json.Number("") fails.
  const exp = decodeField(payload, 'exp', ZERO_TIME, (v) => goTime(v) ?? FAIL);
  const iat = decodeField(payload, 'iat', ZERO_TIME, (v) => goTime(v) ?? FAIL);
  // nbf is a *jsonTime: null sets the pointer back to nil.
  const nbf = decodeField(payload, 'nbf', undefined as number | undefined, (v) => (v === null ? undefined : (goTime(v) ?? FAIL)));
  if (iss === FAIL || aud === FAIL || exp === FAIL || iat === FAIL || nbf === FAIL) return undefined;
  for (const name of ['sub', 'nonce', 'at_hash']) if (decodeField(payload, name, '', goStringField) === FAIL) return undefined;

  // map[string]string and map[string]claimSource: null sets the map to nil; a second
  // object (`_CLAIM_NAMES` after `_claim_names`) adds to the map Go already made.
  const claimNames = decodeField<Readonly<Record<string, string>>>(payload, '_claim_names', {}, (v, held) => {
    if (v === null) return {};
    if (!isObject(v)) return FAIL;
    const names: Record<string, string> = { ...held };
    for (const [claim, source] of Object.entries(v)) {
      const s = goString(source);
      if (s === undefined) return FAIL;
      names[claim] = s;
    }
    return names;
  });
  const claimSources = decodeField<Readonly<Record<string, ClaimSource>>>(payload, '_claim_sources', {}, (v, held) => {
    if (v === null) return {};
    if (!isObject(v)) return FAIL;
    const sources: Record<string, ClaimSource> = { ...held };
    for (const [name, value] of Object.entries(v)) {
      const source = goStringStruct(value, ['endpoint', 'access_token']);
      if (!source) return FAIL;
      sources[name] = { endpoint: source.endpoint, accessToken: source.access_token };
    }
    return sources;
  });
  if (claimNames === FAIL || claimSources === FAIL) return undefined;
  // go-oidc verify.go: every distributed claim must name a source that exists.
  for (const source of Object.values(claimNames)) if (source === '' || !Object.hasOwn(claimSources, source)) return undefined;
  return { iss, aud, exp, nbf, claimNames, claimSources };
}
