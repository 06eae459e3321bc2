/**
 * From a verified JWT payload to an identity, by kube-apiserver's rules for
 * `claimMappings`, `claimValidationRules` and `userValidationRules`
 * (k8s.io/apiserver plugin/pkg/authenticator/token/oidc/oidc.go,
 * AuthenticateToken). Pure: no I/O, no clock; signature, issuer, audience and
 * time checks happen before this.
 *
 * A claim named by `claim` is read as Go's json.Unmarshal reads it into a
 * string (oidc.go unmarshalClaim): JSON null is the empty string, any other
 * non-string refuses the token. CEL expressions see the payload as kube gives
 * it (json.Unmarshal into any: numbers are doubles, objects maps, null null).
 */
import { compileExpression, isNativeStringList, type CelProgram } from '../../cel/compile.js';
import type { JwtAuthenticatorConfig } from '../../config/schema.js';
import { authenticated, rejected, withClaims, type AuthOutcome, type RejectReason } from '../../request/identity.js';

/** The extra key kube-apiserver fills from a string `jti` (user.CredentialIDKey). */
export const CREDENTIAL_ID_KEY = 'authentication.kubernetes.io/credential-id';

type Mappings = JwtAuthenticatorConfig['claimMappings'];

/** The parts of a `jwt[]` entry that map claims (extra and userValidationRules may be left out). */
export interface ClaimRules {
  readonly claimMappings: Omit<Mappings, 'extra'> & { readonly extra?: Mappings['extra'] };
  readonly claimValidationRules: JwtAuthenticatorConfig['claimValidationRules'];
  readonly userValidationRules?: JwtAuthenticatorConfig['userValidationRules'];
}

/** The expressions of one entry, compiled. */
interface Programs {
  readonly username?: CelProgram;
  readonly groups?: CelProgram;
  readonly uid?: CelProgram;
  readonly extra: readonly { readonly key: string; readonly program: CelProgram }[];
  readonly claimRules: readonly CelProgram[];
  readonly userRules: readonly CelProgram[];
}

const compiled = new WeakMap<ClaimRules, Programs>();

/**
 * Compiles the entry's expressions (a cache hit: the config schema compiled
 * them at load). Call it when the authenticator is built, so that a bad
 * expression fails then and never on a request.
 */
export function compileClaimRules(rules: ClaimRules): Programs {
  let programs = compiled.get(rules);
  if (programs) return programs;
  const compile = (expression: string | undefined, variable: 'claims' | 'user', returns: 'any' | 'bool'): CelProgram | undefined => {
    if (!expression) return undefined;
    const result = compileExpression(variable, expression, returns);
    if (!result.ok) throw new Error(`${JSON.stringify(expression)}: ${result.error}`);
    return result.program;
  };
  const { username, groups, uid, extra = [] } = rules.claimMappings;
  const some = <T>(values: readonly (T | undefined)[]): T[] => values.filter((v): v is T => v !== undefined);
  programs = {
    username: compile(username.expression, 'claims', 'any'),
    groups: compile(groups?.expression, 'claims', 'any'),
    uid: compile(uid?.expression, 'claims', 'any'),
    extra: extra.flatMap((e) => some([compile(e.valueExpression, 'claims', 'any')]).map((program) => ({ key: e.key, program }))),
    claimRules: some(rules.claimValidationRules.map((r) => compile(r.expression, 'claims', 'bool'))),
    userRules: some((rules.userValidationRules ?? []).map((r) => compile(r.expression, 'user', 'bool'))),
  };
  compiled.set(rules, programs);
  return programs;
}

/** A refusal carried out of the helpers below (an Error only for the linter's sake; never escapes mapClaims). */
class Refused extends Error {
  constructor(readonly reason: RejectReason) {
    super(reason);
  }
}

/**
 * Maps verified claims to an identity (authMethod `jwt`), or a rejection, in
 * kube's order: username, groups, uid, extra, claim rules, user rules.
 * - username claim: absent → `missing_claim`; not a string → `invalid_claim`;
 *   null reads as ""; "" with a prefix is the prefix alone; when the claim is
 *   `email` and `email_verified` is present, anything but JSON `true` → `email_not_verified`;
 * - groups claim: a string is one group, a list of strings the groups (a null
 *   element reads as ""), absent or null none; anything else → `invalid_claim`;
 * - uid claim: absent → `missing_claim`, not a string → `invalid_claim`, null or "" no uid;
 * - a claim rule: the claim must be present and a string (null reads as "")
 *   equal to `requiredValue` → else `claim_rule_failed`;
 * - an expression that fails or gives the wrong type → `claim_mapping_failed`;
 *   a claim rule expression false or failing → `claim_rule_failed`; a user
 *   rule → `user_rule_failed`;
 * - a string `jti` becomes extra `authentication.kubernetes.io/credential-id: ["JTI=<jti>"]`.
 *
 * Like kube-apiserver, names and groups starting with `system:` are not
 * refused here; that is what `userValidationRules` are for.
 */
export function mapClaims(claims: Readonly<Record<string, unknown>>, rules: ClaimRules): AuthOutcome {
  try {
    return authenticated(mapOrThrow(claims, rules));
  } catch (err) {
    if (err instanceof Refused) return rejected(err.reason);
    throw err;
  }
}

function mapOrThrow(claims: Readonly<Record<string, unknown>>, rules: ClaimRules) {
  const programs = compileClaimRules(rules);
  const { username: usernameMapping, groups: groupsMapping, uid: uidMapping } = rules.claimMappings;

  let username: string;
  if (programs.username) {
    const value = run(programs.username, claims, 'claim_mapping_failed');
    if (typeof value !== 'string' || value === '') throw new Refused('claim_mapping_failed');
    username = value;
  } else {
    const claim = usernameMapping.claim as string;
    username = stringClaim(claims, claim, 'invalid_claim');
    if (claim === 'email' && Object.hasOwn(claims, 'email_verified') && claims.email_verified !== true) throw new Refused('email_not_verified');
    username = (usernameMapping.prefix ?? '') + username;
    // kube would pass an empty name on; requestheader cannot carry one, so it is refused.
    if (username === '') throw new Refused('invalid_claim');
  }

  let groups: string[] = [];
  if (groupsMapping?.claim && Object.hasOwn(claims, groupsMapping.claim)) {
    groups = stringOrArray(claims[groupsMapping.claim]).map((g) => (groupsMapping.prefix ?? '') + g);
  } else if (programs.groups) {
    groups = stringList(run(programs.groups, claims, 'claim_mapping_failed'));
  }

  let uid = '';
  if (uidMapping?.claim) uid = stringClaim(claims, uidMapping.claim, 'invalid_claim');
  else if (programs.uid) {
    const value = run(programs.uid, claims, 'claim_mapping_failed');
    if (typeof value !== 'string') throw new Refused('claim_mapping_failed');
    uid = value;
  }

  const extra: Record<string, readonly string[]> = {};
  // getCredentialID: a jti that unmarshals into a non-empty string.
  if (Object.hasOwn(claims, 'jti') && typeof claims.jti === 'string' && claims.jti !== '') extra[CREDENTIAL_ID_KEY] = Object.freeze([`JTI=${claims.jti}`]);
  for (const { key, program } of programs.extra) {
    const values = stringList(run(program, claims, 'claim_mapping_failed'));
    if (values.length > 0) extra[key] = Object.freeze(values);
  }

  for (const rule of rules.claimValidationRules) {
    if (!rule.claim) continue;
    if (!Object.hasOwn(claims, rule.claim)) throw new Refused('claim_rule_failed');
    if (stringClaim(claims, rule.claim, 'claim_rule_failed') !== rule.requiredValue) throw new Refused('claim_rule_failed');
  }
  for (const program of programs.claimRules) {
    if (run(program, claims, 'claim_rule_failed') !== true) throw new Refused('claim_rule_failed');
  }
  if (programs.userRules.length > 0) {
    const user = { username, uid, groups, extra };
    for (const program of programs.userRules) {
      if (run(program, user, 'user_rule_failed') !== true) throw new Refused('user_rule_failed');
    }
  }

  // Frozen: the token cache hands the same identity to many requests. kube treats an empty uid as none.
  const identity = {
    username,
    ...(uid === '' ? {} : { uid }),
    groups: Object.freeze(groups),
    extra: Object.freeze(extra),
    authMethod: 'jwt' as const,
  };
  return Object.freeze(withClaims(identity, claims));
}

function run(program: CelProgram, input: unknown, reason: RejectReason): unknown {
  const result = program.evaluate(input);
  if (!result.ok) throw new Refused(reason);
  return result.value;
}

/** A claim as json.Unmarshal reads it into a Go string: absent refused, null "", a non-string refused. */
function stringClaim(claims: Readonly<Record<string, unknown>>, name: string, invalid: RejectReason): string {
  if (!Object.hasOwn(claims, name)) throw new Refused(invalid === 'claim_rule_failed' ? invalid : 'missing_claim');
  const value = claims[name];
  if (value === null) return '';
  if (typeof value !== 'string') throw new Refused(invalid);
  return value;
}

/** oidc.go stringOrArray: a list of strings (null elements read as ""), else one string; null is none. */
function stringOrArray(value: unknown): string[] {
  if (value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((g) => g === null || typeof g === 'string')) return value.map((g: string | null) => g ?? '');
  throw new Refused('invalid_claim');
}

/**
 * oidc.go convertCELValueToStringList: a string or a list of strings, "" left
 * out; null is none. A list straight from `split` is refused, as cel-go backs
 * it by a native []string that kube does not take.
 */
function stringList(value: unknown): string[] {
  if (value === null) return [];
  if (isNativeStringList(value)) throw new Refused('claim_mapping_failed');
  if (typeof value === 'string') return value === '' ? [] : [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.filter((v: string) => v !== '');
  throw new Refused('claim_mapping_failed');
}
