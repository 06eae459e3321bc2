/**
 * `authentication.jwt[]`: JWT issuers, shaped like kube-apiserver's
 * AuthenticationConfiguration `jwt` list (apiserver.config.k8s.io/v1), so that
 * one file means the same in both places. Every field kube accepts is taken,
 * CEL included, and refused where kube refuses it, with kube's reason
 * (k8s.io/apiserver pkg/apis/apiserver/validation/validation.go,
 * validateJWTAuthenticator). Expressions are compiled here, once, at load; the
 * authenticator gets the same compiled programs back (src/cel/compile.ts).
 */
import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { compileExpression, selectsClaim, type CelProgram, type CelReturn } from '../cel/compile.js';
import type { CelVariable } from '../cel/environment.js';
import { duration, filePath, httpsUrl, validAt } from './fields.js';

const jwtIssuer = z
  .strictObject({
    url: httpsUrl('https://idp.example.com', 'keys and discovery fetched in clear text can be replaced by anyone on the path').describe(
      'Issuer URL exactly as the tokens\' "iss" claim spells it (a trailing slash matters).',
    ),
    discoveryURL: httpsUrl('https://idp.internal/.well-known/openid-configuration', 'keys fetched in clear text can be replaced by anyone on the path')
      .optional()
      .describe('Where to fetch the discovery document when not at {url}/.well-known/openid-configuration.'),
    audiences: z
      .array(z.string().min(1, 'required: an audience must not be empty'))
      .min(1, 'name at least one audience (the client ID tokens are issued for)')
      .refine((a) => new Set(a).size === a.length, 'lists an audience twice')
      .describe('Accepted "aud" values; a token passes if its aud contains any of them.'),
    audienceMatchPolicy: z
      .literal('MatchAny', { error: 'audienceMatchPolicy must be empty or MatchAny' })
      .optional()
      .describe('For compatibility with kube-apiserver; MatchAny is the only policy.'),
    certificateAuthority: z
      .string()
      .optional()
      .refine((pem) => pem === undefined || pem === '' || hasCertificate(pem), 'data does not contain any valid RSA or ECDSA certificates')
      .describe("CA bundle (PEM, inline) that verifies the issuer's TLS certificate."),
    certificateAuthorityFile: filePath.optional().describe('The same, read from a file. Set one of the two, not both.'),
  })
  .superRefine(
    (i, ctx) => {
      if (i.certificateAuthority !== undefined && i.certificateAuthorityFile !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['certificateAuthorityFile'], message: 'set certificateAuthority or certificateAuthorityFile, not both' });
      }
      if (i.discoveryURL !== undefined && i.url.replace(/\/+$/, '') === i.discoveryURL.replace(/\/+$/, '')) {
        ctx.addIssue({ code: 'custom', path: ['discoveryURL'], message: 'discoveryURL must be different from URL' });
      }
    },
    { when: validAt('url', 'discoveryURL') },
  )
  .superRefine(
    (i, ctx) => {
      // validation.go validateAudiences: go-oidc checks one audience; several need the policy said out loud.
      if (i.audiences.length > 1 && i.audienceMatchPolicy !== 'MatchAny') {
        ctx.addIssue({ code: 'custom', path: ['audienceMatchPolicy'], message: 'audienceMatchPolicy must be MatchAny for multiple audiences (add audienceMatchPolicy: MatchAny)' });
      }
    },
    { when: validAt('audiences', 'audienceMatchPolicy') },
  );

/** kube's cert.NewPoolFromBytes accepts a bundle with at least one certificate that parses. */
function hasCertificate(pem: string): boolean {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.some((block) => {
    try {
      new X509Certificate(block);
      return true;
    } catch {
      return false;
    }
  });
}

const text = (what: string) => z.string().optional().describe(what);

/** `claim` + `prefix`, or `expression` (kube's PrefixedClaimOrExpression). */
const prefixedClaimOrExpression = (what: string) =>
  z.strictObject({
    claim: text(`Claim holding the ${what}.`),
    prefix: text(`Prepended to ${what === 'groups' ? 'every group' : 'the user name'}; required with claim, "" for none.`),
    expression: text(`CEL over claims giving the ${what}${what === 'groups' ? ' (a string or a list of strings)' : ' (a string)'}; instead of claim and prefix.`),
  });

export const jwtAuthenticator = z
  .strictObject({
    issuer: jwtIssuer.describe('Who issues the tokens, and for whom.'),
    claimValidationRules: z
      .array(
        z.strictObject({
          claim: text('Claim to check; the claim must be a string equal to requiredValue.'),
          requiredValue: text('The value the claim must have.'),
          expression: text('CEL over claims that must give true; instead of claim and requiredValue.'),
          message: text('Why the token is refused when the expression gives false.'),
        }),
      )
      .default([])
      .describe('Rules a token must pass: a claim with a required value, or a CEL expression.'),
    claimMappings: z
      .strictObject({
        username: prefixedClaimOrExpression('username').describe(
          'Where the user name comes from. When the claim is email and email_verified is present, it must be true.',
        ),
        groups: prefixedClaimOrExpression('groups').optional().describe('Where the groups come from: a string or a list of strings.'),
        uid: z
          .strictObject({
            claim: text('Claim holding the uid; tokens without it are refused.'),
            expression: text('CEL over claims giving the uid (a string); instead of claim.'),
          })
          .optional()
          .describe('Where the uid comes from.'),
        extra: z
          .array(
            z.strictObject({
              key: z.string().describe('Domain-prefixed, lower-case key, such as example.com/tenant.'),
              valueExpression: text('CEL over claims giving the values (a string or a list of strings).'),
            }),
          )
          .default([])
          .describe('Extra identity fields, each from a CEL expression.'),
      })
      .describe('How claims become the identity: claim and prefix, or CEL expressions.'),
    userValidationRules: z
      .array(
        z.strictObject({
          expression: text('CEL over user (username, uid, groups, extra) that must give true.'),
          message: text('Why the token is refused when the expression gives false.'),
        }),
      )
      .default([])
      .describe('Rules the mapped identity must pass, e.g. !user.username.startsWith(\'system:\').'),
    /**
     * A token with an unknown kid waits for the next allowed refetch rather than
     * failing, so a freshly rotated key is accepted at once while a flood of
     * bogus kids costs the identity provider at most one request per interval.
     */
    jwksRefetchInterval: duration.prefault('2s').describe("How often an unknown key id may make the proxy refetch the issuer's JWKS."),
  })
  .superRefine((entry, ctx) => validateMappings(entry, ctx), { when: validAt('claimValidationRules', 'claimMappings', 'userValidationRules') });

type Entry = Pick<z.output<typeof jwtAuthenticator>, 'claimValidationRules' | 'claimMappings' | 'userValidationRules'>;
type Ctx = z.core.$RefinementCtx<unknown>;
type Path = (string | number)[];

const issue = (ctx: Ctx, path: Path, message: string) => ctx.addIssue({ code: 'custom', path, message });
const has = (s: string | undefined): s is string => s !== undefined && s !== '';

/** Compiles one expression; a failure is an issue at `path` naming the expression. */
function compileAt(ctx: Ctx, path: Path, variable: CelVariable, expression: string, returns: CelReturn): CelProgram | undefined {
  const result = compileExpression(variable, expression, returns);
  if (result.ok) return result.program;
  issue(ctx, path, `${JSON.stringify(expression)}: ${result.error}`);
  return undefined;
}

/** validation.go validateClaimValidationRules, validateClaimMappings, validateUserValidationRules. */
function validateMappings(entry: Entry, ctx: Ctx): void {
  const emailVerifiedReaders: CelProgram[] = [];

  const seenClaims = new Set<string>();
  const seenExpressions = new Set<string>();
  entry.claimValidationRules.forEach((rule, i) => {
    const at: Path = ['claimValidationRules', i];
    if (has(rule.claim) && has(rule.expression)) return issue(ctx, at, "claim and expression can't both be set");
    if (!has(rule.claim) && !has(rule.expression)) return issue(ctx, at, 'claim or expression is required');
    if (has(rule.claim)) {
      if (has(rule.message)) issue(ctx, [...at, 'message'], 'may not be specified when claim is set');
      if (seenClaims.has(rule.claim)) issue(ctx, [...at, 'claim'], `duplicate claim ${JSON.stringify(rule.claim)}`);
      seenClaims.add(rule.claim);
      return;
    }
    const expression = rule.expression as string;
    if (has(rule.requiredValue)) issue(ctx, [...at, 'requiredValue'], 'may not be specified when expression is set');
    if (seenExpressions.has(expression)) return issue(ctx, [...at, 'expression'], 'duplicate expression');
    seenExpressions.add(expression);
    const program = compileAt(ctx, [...at, 'expression'], 'claims', expression, 'bool');
    if (program) emailVerifiedReaders.push(program);
  });

  const { username, groups, uid, extra } = entry.claimMappings;
  const usernameProgram = checkPrefixedMapping(ctx, ['claimMappings', 'username'], username, true);
  checkPrefixedMapping(ctx, ['claimMappings', 'groups'], groups, false);
  if (uid && has(uid.claim) && has(uid.expression)) issue(ctx, ['claimMappings', 'uid'], "claim and expression can't both be set");
  else if (uid && has(uid.expression)) compileAt(ctx, ['claimMappings', 'uid', 'expression'], 'claims', uid.expression, 'any');

  const seenKeys = new Set<string>();
  extra.forEach((mapping, i) => {
    const at: Path = ['claimMappings', 'extra', i];
    for (const problem of extraKeyProblems(mapping.key)) issue(ctx, [...at, 'key'], problem);
    if (seenKeys.has(mapping.key)) return issue(ctx, [...at, 'key'], `duplicate key ${JSON.stringify(mapping.key)}`);
    seenKeys.add(mapping.key);
    if (!has(mapping.valueExpression)) return issue(ctx, [...at, 'valueExpression'], 'required');
    const program = compileAt(ctx, [...at, 'valueExpression'], 'claims', mapping.valueExpression, 'any');
    if (program) emailVerifiedReaders.push(program);
  });

  if (usernameProgram) {
    emailVerifiedReaders.push(usernameProgram);
    if (selectsClaim(usernameProgram, 'email') && !emailVerifiedReaders.some((p) => selectsClaim(p, 'email_verified'))) {
      issue(
        ctx,
        ['claimMappings', 'username', 'expression'],
        'claims.email_verified must be used in claimMappings.username.expression or claimMappings.extra[*].valueExpression or claimValidationRules[*].expression when claims.email is used in claimMappings.username.expression',
      );
    }
  }

  const seenUserExpressions = new Set<string>();
  entry.userValidationRules.forEach((rule, i) => {
    const at: Path = ['userValidationRules', i, 'expression'];
    if (!has(rule.expression)) return issue(ctx, at, 'required');
    if (seenUserExpressions.has(rule.expression)) return issue(ctx, at, 'duplicate expression');
    seenUserExpressions.add(rule.expression);
    compileAt(ctx, at, 'user', rule.expression, 'bool');
  });
}

/** validation.go validatePrefixClaimOrExpression; returns the compiled expression, if any. */
function checkPrefixedMapping(
  ctx: Ctx,
  at: Path,
  mapping: { claim?: string | undefined; prefix?: string | undefined; expression?: string | undefined } | undefined,
  required: boolean,
): CelProgram | undefined {
  if (has(mapping?.expression) && has(mapping.claim)) return void issue(ctx, at, "claim and expression can't both be set");
  if (!has(mapping?.expression) && !has(mapping?.claim)) {
    if (required) issue(ctx, at, 'claim or expression is required');
    return undefined;
  }
  if (has(mapping.expression)) {
    if (mapping.prefix !== undefined) issue(ctx, [...at, 'prefix'], 'may not be specified when expression is set');
    return compileAt(ctx, [...at, 'expression'], 'claims', mapping.expression, 'any');
  }
  if (mapping.prefix === undefined) {
    issue(ctx, [...at, 'prefix'], 'prefix is required when claim is set. It can be set to an empty string to disable prefixing (kube-apiserver requires it too)');
  }
  return undefined;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HTTP_PATH = /^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/;

/** An extra key's problems, in kube's words (IsDomainPrefixedPath, lower case, reserved domains). */
function extraKeyProblems(key: string): string[] {
  if (key === '') return ['required'];
  const problems: string[] = [];
  const slash = key.indexOf('/');
  const [host, path] = slash < 0 ? [key, ''] : [key.slice(0, slash), key.slice(slash + 1)];
  if (slash < 0 || host === '' || path === '') problems.push('must be a domain-prefixed path (such as "acme.io/foo")');
  else {
    if (host.length > 253) problems.push('must be no more than 253 characters');
    if (!DNS1123_SUBDOMAIN.test(host)) {
      problems.push(
        `${JSON.stringify(host)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
      );
    }
    if (!HTTP_PATH.test(path)) problems.push(`${JSON.stringify(path)}: Invalid path`);
  }
  if (key !== key.toLowerCase()) problems.push('must be lowercase');
  if (slash >= 0 && /(^|\.)(kubernetes\.io|k8s\.io)$/.test(host)) problems.push('k8s.io, kubernetes.io and their subdomains are reserved for Kubernetes use');
  return problems;
}

/**
 * The `jwt[]` list: entries as {@link jwtAuthenticator}, and no discoveryURL
 * twice (validation.go validateJWTAuthenticators: field.Duplicate).
 */
export const jwtAuthenticatorList = z.array(jwtAuthenticator).superRefine((entries, ctx) => {
  const seen = new Map<string, number>();
  entries.forEach((entry, index) => {
    const { discoveryURL } = entry.issuer;
    if (discoveryURL === undefined || discoveryURL === '') return;
    const earlier = seen.get(discoveryURL);
    if (earlier === undefined) seen.set(discoveryURL, index);
    else issue(ctx, [index, 'issuer', 'discoveryURL'], `Duplicate value: ${JSON.stringify(discoveryURL)} (the same as jwt[${earlier}]); give each issuer its own discoveryURL`);
  });
});
