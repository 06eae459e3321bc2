/**
 * From a verified JWT payload to an identity, by kube-apiserver's claim rules
 * for `claimMappings` and `claimValidationRules` (structured authentication
 * configuration, plugin/pkg/authenticator/token/oidc). Pure: no I/O, no clock;
 * signature, issuer, audience and time checks happen before this.
 */
import type { JwtAuthenticatorConfig } from '../../config/schema.js';
import { authenticated, rejected, type AuthOutcome } from '../../request/identity.js';

/** The extra key kube-apiserver fills from a string `jti` (user.CredentialIDKey). */
export const CREDENTIAL_ID_KEY = 'authentication.kubernetes.io/credential-id';

/** The parts of a `jwt[]` entry that map claims. */
export type ClaimRules = Pick<JwtAuthenticatorConfig, 'claimMappings' | 'claimValidationRules'>;

/**
 * Maps verified claims to an identity (authMethod `jwt`), or a rejection:
 * - username claim: absent or null → `missing_claim`; not a non-empty string →
 *   `invalid_claim`; when the claim is `email` and `email_verified` is present,
 *   anything but JSON `true` → `email_not_verified`;
 * - groups claim: a string is one group, an array of strings is the groups,
 *   absent or null is none; anything else → `invalid_claim`;
 * - uid claim (when configured): absent or null → `missing_claim`, not a string → `invalid_claim`;
 * - each `claimValidationRules` entry: the claim must be a string equal to
 *   `requiredValue` → else `claim_rule_failed`;
 * - a non-empty string `jti` becomes extra `authentication.kubernetes.io/credential-id: ["JTI=<jti>"]`.
 *
 * Prefixes are prepended as configured. Like kube-apiserver, names and groups
 * starting with `system:` are not refused here; kube leaves that to
 * `userValidationRules`, so a groups claim the user can influence must carry a prefix.
 */
export function mapClaims(claims: Readonly<Record<string, unknown>>, rules: ClaimRules): AuthOutcome {
  // Own properties only: a claim named "constructor" must not find Object.prototype's.
  const claim = (name: string): unknown => (Object.hasOwn(claims, name) ? claims[name] : undefined);
  const { username: usernameMapping, groups: groupsMapping, uid: uidMapping } = rules.claimMappings;

  const name = claim(usernameMapping.claim);
  if (name === undefined || name === null) return rejected('missing_claim');
  if (typeof name !== 'string' || name === '') return rejected('invalid_claim');
  if (usernameMapping.claim === 'email' && Object.hasOwn(claims, 'email_verified') && claims.email_verified !== true) {
    return rejected('email_not_verified');
  }

  let groups: readonly string[] = [];
  if (groupsMapping) {
    const value = claim(groupsMapping.claim);
    if (typeof value === 'string') groups = [value];
    else if (Array.isArray(value) && value.every((g): g is string => typeof g === 'string')) groups = value;
    else if (value !== undefined && value !== null) return rejected('invalid_claim');
    groups = groups.map((g) => groupsMapping.prefix + g);
  }

  let uid: string | undefined;
  if (uidMapping) {
    const value = claim(uidMapping.claim);
    if (value === undefined || value === null) return rejected('missing_claim');
    if (typeof value !== 'string') return rejected('invalid_claim');
    // kube treats an empty uid as no uid.
    uid = value || undefined;
  }

  for (const rule of rules.claimValidationRules) {
    if (claim(rule.claim) !== rule.requiredValue) return rejected('claim_rule_failed');
  }

  // kube sets the credential id from a string jti only; any other jti is ignored, not refused.
  const jti = claim('jti');
  const extra: Record<string, readonly string[]> = {};
  if (typeof jti === 'string' && jti !== '') extra[CREDENTIAL_ID_KEY] = Object.freeze([`JTI=${jti}`]);

  // Frozen: the token cache hands the same identity to many requests.
  return authenticated(
    Object.freeze({
      username: usernameMapping.prefix + name,
      ...(uid === undefined ? {} : { uid }),
      groups: Object.freeze(groups),
      extra: Object.freeze(extra),
      authMethod: 'jwt',
    }),
  );
}
