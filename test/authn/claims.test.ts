import t from 'tap';
import type { Identity, RejectReason } from '../../src/request/identity.js';
import { CREDENTIAL_ID_KEY, mapClaims, type ClaimRules } from '../../src/authn/jwt/claims.js';

const email: ClaimRules = {
  claimMappings: { username: { claim: 'email', prefix: '' }, groups: { claim: 'groups', prefix: 'oidc:' } },
  claimValidationRules: [],
};
const sub: ClaimRules = {
  claimMappings: { username: { claim: 'sub', prefix: 'idp#' }, uid: { claim: 'oid' } },
  claimValidationRules: [{ claim: 'hd', requiredValue: 'example.com' }],
};
const noGroups: ClaimRules = { claimMappings: { username: { claim: 'email', prefix: '' } }, claimValidationRules: [] };

type Row = readonly [
  name: string,
  rules: ClaimRules,
  claims: Record<string, unknown>,
  expect: RejectReason | Partial<Identity>,
];

const rows: Row[] = [
  // username
  ['email username', email, { email: 'a@example.com' }, { username: 'a@example.com', groups: [], extra: {} }],
  ['username prefix', sub, { sub: '42', oid: 'u1', hd: 'example.com' }, { username: 'idp#42' }],
  ['username absent', email, { sub: 'x' }, 'missing_claim'],
  // oidc.go unmarshalClaim: json.Unmarshal of null into a Go string leaves ""; kube then prefixes it.
  ['username null reads as empty, refused without a prefix', email, { email: null }, 'invalid_claim'],
  ['username null with a prefix is the prefix alone (kube 1.37)', sub, { sub: null, oid: 'u', hd: 'example.com' }, { username: 'idp#' }],
  ['username empty with a prefix is the prefix alone (kube 1.37)', sub, { sub: '', oid: 'u', hd: 'example.com' }, { username: 'idp#' }],
  ['username empty', email, { email: '' }, 'invalid_claim'],
  ['username a number', email, { email: 42 }, 'invalid_claim'],
  ['username an array', email, { email: ['a@example.com'] }, 'invalid_claim'],
  ['username from the prototype is not a claim', { ...noGroups, claimMappings: { username: { claim: 'constructor', prefix: '' } } }, {}, 'missing_claim'],
  // email_verified
  ['email_verified true', email, { email: 'a@example.com', email_verified: true }, { username: 'a@example.com' }],
  ['email_verified false', email, { email: 'a@example.com', email_verified: false }, 'email_not_verified'],
  ['email_verified "true" is not true', email, { email: 'a@example.com', email_verified: 'true' }, 'email_not_verified'],
  ['email_verified null', email, { email: 'a@example.com', email_verified: null }, 'email_not_verified'],
  ['email_verified ignored for other username claims', { ...noGroups, claimMappings: { username: { claim: 'upn', prefix: '' } } }, { upn: 'a', email_verified: false }, { username: 'a' }],
  // groups
  ['groups string is one group', email, { email: 'a', groups: 'admins' }, { groups: ['oidc:admins'] }],
  ['groups array, prefixed each', email, { email: 'a', groups: ['x', 'y'] }, { groups: ['oidc:x', 'oidc:y'] }],
  ['groups empty array', email, { email: 'a', groups: [] }, { groups: [] }],
  ['groups absent', email, { email: 'a' }, { groups: [] }],
  ['groups null', email, { email: 'a', groups: null }, { groups: [] }],
  ['groups a number', email, { email: 'a', groups: 7 }, 'invalid_claim'],
  ['groups an object', email, { email: 'a', groups: { admins: true } }, 'invalid_claim'],
  ['groups array with a number', email, { email: 'a', groups: ['x', 1] }, 'invalid_claim'],
  // stringOrArray: json.Unmarshal of ["x", null] into []string gives ["x", ""].
  ['groups array with null: the null is an empty group', email, { email: 'a', groups: ['x', null] }, { groups: ['oidc:x', 'oidc:'] }],
  ['groups not mapped: claim ignored', noGroups, { email: 'a', groups: 7 }, { groups: [] }],
  ['system: groups are not refused (kube leaves it to userValidationRules)', { ...email, claimMappings: { ...email.claimMappings, groups: { claim: 'groups', prefix: '' } } }, { email: 'a', groups: ['system:masters'] }, { groups: ['system:masters'] }],
  // uid
  ['uid', sub, { sub: '42', oid: 'u1', hd: 'example.com' }, { uid: 'u1' }],
  ['uid absent', sub, { sub: '42', hd: 'example.com' }, 'missing_claim'],
  ['uid null reads as empty: no uid', sub, { sub: '42', oid: null, hd: 'example.com' }, { uid: undefined }],
  ['uid a number', sub, { sub: '42', oid: 1, hd: 'example.com' }, 'invalid_claim'],
  ['uid empty is no uid', sub, { sub: '42', oid: '', hd: 'example.com' }, { uid: undefined }],
  // jti
  ['string jti → credential id', email, { email: 'a', jti: 'abc' }, { extra: { [CREDENTIAL_ID_KEY]: ['JTI=abc'] } }],
  ['numeric jti ignored', email, { email: 'a', jti: 5 }, { extra: {} }],
  ['empty jti ignored', email, { email: 'a', jti: '' }, { extra: {} }],
  // claimValidationRules
  ['rule holds', sub, { sub: '42', oid: 'u', hd: 'example.com' }, { username: 'idp#42' }],
  ['rule claim absent', sub, { sub: '42', oid: 'u' }, 'claim_rule_failed'],
  ['rule claim differs', sub, { sub: '42', oid: 'u', hd: 'evil.com' }, 'claim_rule_failed'],
  ['rule claim not a string', sub, { sub: '42', oid: 'u', hd: ['example.com'] }, 'claim_rule_failed'],
  ['rule with empty requiredValue matches null (null reads as "")', { ...sub, claimValidationRules: [{ claim: 'hd', requiredValue: '' }] }, { sub: '42', oid: 'u', hd: null }, { username: 'idp#42' }],
  ['rule with empty requiredValue still needs the claim', { ...sub, claimValidationRules: [{ claim: 'hd', requiredValue: '' }] }, { sub: '42', oid: 'u' }, 'claim_rule_failed'],
];

const cel = (mappings: Partial<ClaimRules['claimMappings']>, more: Partial<ClaimRules> = {}): ClaimRules => ({
  claimMappings: { username: { expression: "'oidc:' + claims.sub" }, ...mappings },
  claimValidationRules: [],
  ...more,
});

// CEL mappings and rules, typed as oidc.go types their results (getUsername, getGroups, getUID, getExtra,
// convertCELValueToStringList, checkValidationRulesEvaluation).
const celRows: Row[] = [
  ['cel username', cel({}), { sub: 'a' }, { username: 'oidc:a' }],
  ['cel username not a string', cel({ username: { expression: 'claims.n' } }), { n: 1 }, 'claim_mapping_failed'],
  ['cel username empty', cel({ username: { expression: 'claims.sub' } }), { sub: '' }, 'claim_mapping_failed'],
  ['cel username fails: missing claim', cel({}), {}, 'claim_mapping_failed'],
  ['cel groups list, empty strings left out', cel({ groups: { expression: 'claims.g' } }), { sub: 'a', g: ['x', '', 'y'] }, { groups: ['x', 'y'] }],
  ['cel groups string', cel({ groups: { expression: 'claims.g' } }), { sub: 'a', g: 'x' }, { groups: ['x'] }],
  ['cel groups empty string is none', cel({ groups: { expression: 'claims.g' } }), { sub: 'a', g: '' }, { groups: [] }],
  ['cel groups null is none', cel({ groups: { expression: 'claims.g' } }), { sub: 'a', g: null }, { groups: [] }],
  ['cel groups with a number', cel({ groups: { expression: 'claims.g' } }), { sub: 'a', g: ['x', 1] }, 'claim_mapping_failed'],
  // oidc.go convertCELValueToStringList takes []interface{} or []ref.Val lists; split gives a native []string.
  ['cel groups split is refused, as kube does', cel({ groups: { expression: "claims.roles.split(',')" } }), { sub: 'a', roles: 'r1,r2' }, 'claim_mapping_failed'],
  ['cel groups split then mapped', cel({ groups: { expression: "claims.roles.split(',').map(r, r)" } }), { sub: 'a', roles: 'r1,r2' }, { groups: ['r1', 'r2'] }],
  ['cel extra split is refused, as kube does', cel({ extra: [{ key: 'example.com/s', valueExpression: "claims.roles.split(',')" }] }), { sub: 'a', roles: 'r1' }, 'claim_mapping_failed'],
  ['cel uid', cel({ uid: { expression: 'claims.oid' } }), { sub: 'a', oid: 'u' }, { uid: 'u' }],
  ['cel uid not a string', cel({ uid: { expression: 'claims.oid' } }), { sub: 'a', oid: 5 }, 'claim_mapping_failed'],
  ['cel extra', cel({ extra: [{ key: 'example.com/tenant', valueExpression: 'claims.t' }] }), { sub: 'a', t: 't1' }, { extra: { 'example.com/tenant': ['t1'] } }],
  ['cel extra empty is left out', cel({ extra: [{ key: 'example.com/tenant', valueExpression: 'claims.t' }] }), { sub: 'a', t: [] }, { extra: {} }],
  ['cel claim rule holds', cel({}, { claimValidationRules: [{ expression: "claims.hd == 'example.com'" }] }), { sub: 'a', hd: 'example.com' }, { username: 'oidc:a' }],
  ['cel claim rule false', cel({}, { claimValidationRules: [{ expression: "claims.hd == 'example.com'" }] }), { sub: 'a', hd: 'evil.com' }, 'claim_rule_failed'],
  ['cel claim rule fails', cel({}, { claimValidationRules: [{ expression: "claims.hd == 'example.com'" }] }), { sub: 'a' }, 'claim_rule_failed'],
  ['user rule holds', cel({}, { userValidationRules: [{ expression: "!user.username.startsWith('system:')" }] }), { sub: 'a' }, { username: 'oidc:a' }],
  ['user rule refuses system:', cel({ username: { expression: 'claims.sub' } }, { userValidationRules: [{ expression: "!user.username.startsWith('system:')" }] }), { sub: 'system:admin' }, 'user_rule_failed'],
  ['user rule sees groups and the credential id', cel({ groups: { expression: 'claims.g' } }, { userValidationRules: [{ expression: "user.groups == ['x'] && user.extra['authentication.kubernetes.io/credential-id'] == ['JTI=j'] && user.uid == ''" }] }), { sub: 'a', g: ['x'], jti: 'j' }, { groups: ['x'] }],
];
rows.push(...celRows);

for (const [name, rules, claims, expect] of rows) {
  t.test(name, async (t) => {
    const outcome = mapClaims(claims, rules);
    if (typeof expect === 'string') {
      t.same(outcome, { kind: 'rejected', reason: expect });
      return;
    }
    t.equal(outcome.kind, 'authenticated');
    if (outcome.kind !== 'authenticated') return;
    t.equal(outcome.identity.authMethod, 'jwt');
    for (const [key, value] of Object.entries(expect)) t.same(outcome.identity[key as keyof Identity], value, key);
  });
}

t.test('the identity is frozen, since the cache shares it between requests', async (t) => {
  const outcome = mapClaims({ email: 'a', groups: ['x'], jti: 'j' }, email);
  if (outcome.kind !== 'authenticated') {
    t.fail('not authenticated');
    return;
  }
  t.ok(Object.isFrozen(outcome.identity));
  t.ok(Object.isFrozen(outcome.identity.groups));
  t.ok(Object.isFrozen(outcome.identity.extra));
  t.ok(Object.isFrozen(outcome.identity.extra[CREDENTIAL_ID_KEY]));
});

t.test('the claims object is not modified', async (t) => {
  const claims = Object.freeze({ email: 'a', groups: Object.freeze(['x']) });
  mapClaims(claims, email);
  t.same(claims, { email: 'a', groups: ['x'] });
});
