/**
 * A route's `allow` rule against an identity: anyone matching one of users,
 * groups or emailDomains (none listed: every authenticated caller), and every
 * claim in claims. The answer names the rule that refused, for the audit line
 * and the 403 page.
 */
import type { AllowRule } from '../config/schema.js';
import type { Identity } from '../request/identity.js';

export type RuleVerdict = { readonly allowed: true } | { readonly allowed: false; readonly rule: string };

/** The verified email's domain, lower-case; undefined when the token has none or says it is not verified. */
function emailDomain(identity: Identity): string | undefined {
  const { email, email_verified: verified } = identity.claims ?? {};
  if (typeof email !== 'string' || verified === false || verified === 'false') return undefined;
  const at = email.lastIndexOf('@');
  return at > 0 ? email.slice(at + 1).toLowerCase() : undefined;
}

function claimHolds(value: unknown, wanted: readonly string[]): boolean {
  if (typeof value === 'string') return wanted.includes(value);
  return Array.isArray(value) && value.some((v) => typeof v === 'string' && wanted.includes(v));
}

export function checkRouteRule(identity: Identity, allow: AllowRule | undefined): RuleVerdict {
  if (!allow) return { allowed: true };
  const { users, groups, emailDomains, claims } = allow;
  for (const [name, value] of Object.entries(claims)) {
    if (!claimHolds(identity.claims?.[name], typeof value === 'string' ? [value] : value)) return { allowed: false, rule: `claims.${name}` };
  }
  if (users.length + groups.length + emailDomains.length === 0) return { allowed: true };
  if (users.includes(identity.username)) return { allowed: true };
  if (identity.groups.some((g) => groups.includes(g))) return { allowed: true };
  const domain = emailDomain(identity);
  if (domain !== undefined && emailDomains.includes(domain)) return { allowed: true };
  const kinds = [users.length && 'users', groups.length && 'groups', emailDomains.length && 'emailDomains'].filter(Boolean);
  return { allowed: false, rule: kinds.join('|') };
}
