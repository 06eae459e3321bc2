/**
 * The tokens the differential suite sends to kube-apiserver and to the proxy,
 * and the AuthenticationConfiguration both read. Four issuers, one per way of
 * mapping: A claims with prefixes (email user name), B a required claim and two
 * audiences, C CEL of every documented form with claim and user validation
 * rules, D CEL over nested claims with optional fields and string functions.
 *
 * The fixed cases restate, as facts, the cases of Kubernetes' own JWT
 * authenticator tests that apply to a running apiserver
 * (k8s.io/apiserver@v0.37.2 plugin/pkg/authenticator/token/oidc/oidc_test.go):
 * their names are kept in `name`. Then seeded random claims: types, nesting,
 * unicode, system: names, missing claims, the edges of exp, nbf and iat.
 */
import { importJWK, SignJWT, type JWK } from 'jose';

export interface CorpusIssuer {
  /** A, B, C or D. */
  readonly name: string;
  readonly url: string;
  /** The issuer's private signing keys (RS256 and ES256). */
  readonly keys: readonly JWK[];
}

export interface CorpusToken {
  /** What kind of case this is: the differences are counted by it. */
  readonly klass: string;
  readonly name: string;
  /** The claims as signed (for the report), or undefined for a token that is not a signed JWT. */
  readonly claims?: Record<string, unknown>;
  readonly header?: Record<string, unknown>;
  /** The Authorization header value to send. */
  readonly authorization: string;
}

/** The file both kube-apiserver and the proxy read. `ca` is the PEM that verifies every issuer. */
export function authenticationConfiguration(issuers: Record<'A' | 'B' | 'C' | 'D', string>, ca: string): string {
  const pem = ca.trim().split('\n').join('\n        ');
  const issuer = (url: string, audiences = '[kubernetes]', extra = '') =>
    `  - issuer:\n      url: "${url}"\n      audiences: ${audiences}\n${extra}      certificateAuthority: |\n        ${pem}\n`;
  return `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
${issuer(issuers.A)}    claimMappings:
      username: { claim: email, prefix: "" }
      groups: { claim: groups, prefix: "oidc:" }
      uid: { claim: sub }
${issuer(issuers.B, '[kubernetes, other-client]', '      audienceMatchPolicy: MatchAny\n')}    claimValidationRules:
      - claim: tenant
        requiredValue: acme
    claimMappings:
      username: { claim: sub, prefix: "b:" }
      groups: { claim: roles, prefix: "" }
${issuer(issuers.C)}    claimValidationRules:
      - expression: "!has(claims.blocked) || claims.blocked != true"
        message: blocked account
    claimMappings:
      username: { expression: "'cel:' + claims.sub" }
      groups: { expression: "has(claims.groups) ? claims.groups : []" }
      uid: { expression: "has(claims.uid) ? claims.uid : ''" }
      extra:
        - key: example.com/tenant
          valueExpression: "has(claims.tenant) ? claims.tenant : ''"
        - key: example.com/fixed
          valueExpression: "'hardcoded'"
        - key: example.com/roles
          valueExpression: "has(claims.roles) ? claims.roles : []"
    userValidationRules:
      - expression: "!user.username.startsWith('cel:system:')"
        message: "user names may not start with system:"
      - expression: "user.groups.all(g, !g.startsWith('system:'))"
        message: "groups may not start with system:"
${issuer(issuers.D)}    claimValidationRules:
      - expression: "claims.?org.?active.orValue(true) == true"
    claimMappings:
      username:
        expression: "claims.?email_verified.orValue(false) == true ? claims.email : 'd:' + claims.sub"
      groups:
        expression: "claims.?org.?teams.orValue([]).map(t, 'team:' + t)"
      extra:
        - key: example.com/org
          valueExpression: "claims.?org.?name.orValue('')"
        - key: example.com/scopes
          valueExpression: "has(claims.scope) ? claims.scope.split(' ') : []"
        - key: example.com/scopes-mapped
          valueExpression: "has(claims.scope) && type(claims.scope) == string ? claims.scope.split(' ').map(s, s) : []"
        - key: example.com/upper
          valueExpression: "has(claims.nick) ? claims.nick.upperAscii() : ''"
        - key: example.com/exp-text
          valueExpression: "has(claims.exp) && type(claims.exp) == double ? string(claims.exp) : ''"
        - key: example.com/nick-libraries
          valueExpression: >-
            has(claims.nick) && type(claims.nick) == string ?
            [claims.nick.find('[a-z]+'), string(claims.nick.indexOf('a')), strings.quote(claims.nick),
             sets.contains(['alice', 'Bob'], [claims.nick]) ? 'known' : 'unknown',
             string(claims.nick.findAll('[0-9]').size())] : []
        - key: example.com/range
          valueExpression: "lists.range(2).map(i, string(i)).reverse()"
        - key: example.com/scope-concat
          valueExpression: "has(claims.scopes) && type(claims.scopes) == string ? claims.scopes.split(',') + [] : []"
        - key: example.com/addr
          valueExpression: >-
            has(claims.addr) && type(claims.addr) == string && isIP(claims.addr) ?
            [string(ip(claims.addr)), string(ip(claims.addr).family()), string(ip.isCanonical(claims.addr)),
             cidr('10.0.0.0/8').containsIP(claims.addr) ? 'internal' : 'external',
             string(ip(claims.addr).isLoopback()) + string(ip(claims.addr).isGlobalUnicast()) + string(ip(claims.addr).isLinkLocalUnicast())] : []
        - key: example.com/net
          valueExpression: >-
            has(claims.net) && type(claims.net) == string && isCIDR(claims.net) ?
            [string(cidr(claims.net).masked()), string(cidr(claims.net).ip()), string(cidr(claims.net).prefixLength()),
             string(cidr(claims.net).containsCIDR('10.1.0.0/16')), string(cidr(claims.net) == cidr(claims.net).masked())] : []
        - key: example.com/site
          valueExpression: >-
            has(claims.site) && type(claims.site) == string && isURL(claims.site) ?
            [url(claims.site).getScheme(), url(claims.site).getHost(), url(claims.site).getHostname(), url(claims.site).getPort(),
             url(claims.site).getEscapedPath()] + url(claims.site).getQuery().transformList(k, v, k + '=' + v.join(',')).sort() : []
        - key: example.com/ver
          valueExpression: >-
            has(claims.ver) && type(claims.ver) == string && isSemver(claims.ver, true) ?
            [string(semver(claims.ver, true).major()), string(semver(claims.ver, true).minor()),
             semver(claims.ver, true).isLessThan(semver('1.30.0')) ? 'old' : 'new', string(isSemver(claims.ver))] : []
        - key: example.com/quota
          valueExpression: >-
            has(claims.quota) && type(claims.quota) == string && isQuantity(claims.quota) ?
            [string(quantity(claims.quota).isInteger()), string(quantity(claims.quota).asApproximateFloat()),
             string(sign(quantity(claims.quota))), string(quantity(claims.quota).compareTo(quantity('1.5Gi'))),
             string(quantity(claims.quota).add(1).isInteger()), string(quantity(claims.quota).sub(quantity('100m')).asApproximateFloat()),
             quantity(claims.quota).isInteger() ? string(quantity(claims.quota).asInteger()) : 'fraction'] : []
        - key: example.com/named
          valueExpression: >-
            has(claims.label) && type(claims.label) == string ?
            ['dns1123Label=' + format.dns1123Label().validate(claims.label).optMap(m, m.join('; ')).orValue('ok'),
             'dns1123SubdomainPrefix=' + format.dns1123SubdomainPrefix().validate(claims.label).optMap(m, m.join('; ')).orValue('ok'),
             'qualifiedName=' + format.qualifiedName().validate(claims.label).optMap(m, m.join('; ')).orValue('ok'),
             'labelValue=' + format.labelValue().validate(claims.label).optMap(m, m.join('; ')).orValue('ok'),
             'uri=' + format.uri().validate(claims.label).optMap(m, m.join('; ')).orValue('ok'),
             'uuid=' + format.uuid().validate(claims.label).optMap(m, m.join('; ')).orValue('ok'),
             'byte=' + format.byte().validate(claims.label).optMap(m, m.join('; ')).orValue('ok'),
             'date=' + format.date().validate(claims.label).optMap(m, m.join('; ')).orValue('ok'),
             'datetime=' + format.datetime().validate(claims.label).optMap(m, m.join('; ')).orValue('ok'),
             'named=' + string(format.named(claims.label).hasValue())] : []
        - key: example.com/optional
          valueExpression: >-
            [claims.?nick.optMap(n, 'nick:' + string(n)), claims.?org.optFlatMap(o, o.?name).optMap(n, 'org:' + string(n)),
             optional.ofNonZeroValue(claims.?label.orValue('')).optMap(l, 'label')].unwrapOpt()
        - key: example.com/strict
          valueExpression: "has(claims.strict) ? string(ip(claims.strict)) + ' ' + url(claims.strict_url).getHost() : ''"
    userValidationRules:
      - expression: "user.groups.all(i, g, g != 'team:blocked' || i > 100)"
        message: "no blocked team"
      - expression: "user.extra.transformList(k, v, k).sort().isSorted()"
`;
}

/** mulberry32: a small seeded generator, so a run can be replayed with KFP_SEED. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface Signer {
  sign(claims: Record<string, unknown>, header?: { alg?: string; kid?: string; keyOf?: CorpusIssuer; typ?: string }): Promise<string>;
}

function signer(issuer: CorpusIssuer): Signer {
  return {
    async sign(claims, header = {}) {
      const owner = header.keyOf ?? issuer;
      const alg = header.alg ?? 'RS256';
      const family = alg.startsWith('ES') ? 'EC' : 'RSA';
      const jwk = owner.keys.find((k) => k.kty === family)!;
      // The JWK's own alg is left out, so one RSA key can sign RS256, RS384, PS256…
      const { alg: _alg, ...bare } = jwk;
      const key = await importJWK(bare, alg);
      return new SignJWT(claims)
        .setProtectedHeader({ alg, kid: header.kid ?? issuer.keys.find((k) => k.kty === family)!.kid, ...(header.typ ? { typ: header.typ } : {}) })
        .sign(key);
    },
  };
}

const bearer = (token: string) => `Bearer ${token}`;

/** An HTTPS endpoint (trusted by the file's CA) that answers GET `path` with `body`: distributed claims. */
export interface ClaimSource {
  readonly url: string;
  serve(path: string, body: string, status?: number): void;
}

/** The corpus: fixed cases, then `randomCount` seeded random ones. */
export async function buildCorpus(
  issuers: Record<'A' | 'B' | 'C' | 'D', CorpusIssuer>,
  seed: number,
  randomCount: number,
  claimSource?: ClaimSource,
): Promise<CorpusToken[]> {
  const now = Math.floor(Date.now() / 1000);
  const base = (issuer: CorpusIssuer, extra: Record<string, unknown> = {}) => ({ iss: issuer.url, aud: 'kubernetes', sub: 'alice', iat: now, exp: now + 600, ...extra });
  const out: CorpusToken[] = [];
  const add = async (klass: string, name: string, issuer: CorpusIssuer, claims: Record<string, unknown>, header?: Parameters<Signer['sign']>[1], wrap = bearer) => {
    const token = await signer(issuer).sign(claims, header);
    out.push({ klass, name, claims, ...(header ? { header: { ...header, keyOf: header.keyOf?.name } } : {}), authorization: wrap(token) });
  };
  const { A, B, C, D } = issuers;
  const email = { email: 'alice@example.com', email_verified: true };

  // oidc_test.go, claim mappings (issuer A: email, groups with "oidc:", uid from sub).
  await add('kube-case', 'token', A, base(A, email));
  await add('kube-case', 'no-username', A, base(A));
  await add('kube-case', 'email-not-verified', A, base(A, { ...email, email_verified: false }));
  await add('kube-case', 'no-email-verified-claim', A, base(A, { email: 'alice@example.com' }));
  await add('kube-case', 'invalid-email-verified-claim', A, base(A, { ...email, email_verified: 'true' }));
  await add('kube-case', 'groups', A, base(A, { ...email, groups: ['team1', 'team2'] }));
  await add('kube-case', 'group-string-claim', A, base(A, { ...email, groups: 'team1' }));
  await add('kube-case', 'no-groups-claim', A, base(A, email));
  await add('kube-case', 'invalid-groups-claim', A, base(A, { ...email, groups: 42 }));
  await add('kube-case', 'groups-distributed-normal-claim-wins', A, base(A, { ...email, groups: ['team1'], _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://127.0.0.1:9/groups', access_token: 'x' } } }));
  await add('distributed', 'groups-distributed (unreachable endpoint)', A, base(A, { ...email, _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://127.0.0.1:9/groups', access_token: 'x' } } }));
  await add('distributed', 'groups-distributed-malformed-claim-names', A, base(A, { ...email, _claim_names: 'groups', _claim_sources: { src1: { endpoint: 'https://127.0.0.1:9/groups' } } }));
  await add('distributed', 'groups-distributed-malformed-names-and-sources', A, base(A, { ...email, _claim_names: { groups: 'src1' } }));
  await add('distributed', 'groups-distributed-aggregated-not-supported', A, base(A, { ...email, _claim_names: { groups: 'src1' }, _claim_sources: { src1: { JWT: 'a.b.c' } } }));
  await add('distributed', 'unused distributed claim', A, base(A, { ...email, groups: ['x'], _claim_names: { other: 'src1' }, _claim_sources: { src1: { endpoint: 'https://127.0.0.1:9/other' } } }));
  if (claimSource) {
    // Distributed claims (OpenID Connect Core 5.6.2), fetched by kube-apiserver as a JWT of a configured issuer.
    let n = 0;
    const distributed = async (name: string, body: Record<string, unknown> | undefined, status = 200, extra: Record<string, unknown> = {}) => {
      const path = `/claims/${++n}`;
      claimSource.serve(path, body ? await signer(A).sign(body) : 'not found', status);
      await add('distributed', name, A, base(A, { ...email, _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: `${claimSource.url}${path}`, access_token: 'opaque' } }, ...extra }));
    };
    const groupsJwt = (extra: Record<string, unknown> = {}) => ({ iss: A.url, aud: 'kubernetes', sub: 'alice', exp: now + 600, groups: ['dist1', 'dist2'], ...extra });
    await distributed('groups-distributed', groupsJwt());
    await distributed('group-string-claim-distributed', groupsJwt({ groups: 'dist-single' }));
    await distributed('groups-distributed-wrong-audience', groupsJwt({ aud: 'someone-else' }));
    await distributed('groups-distributed-expired-token', groupsJwt({ exp: now - 60 }));
    await distributed('groups-distributed (endpoint answers 404)', undefined, 404);
    await distributed('groups-distributed, claim missing from the endpoint JWT', groupsJwt({ groups: undefined }));
    await distributed('groups-distributed-normal-claim-wins (reachable)', groupsJwt(), 200, { groups: ['inline'] });
    // The endpoint's JWT from another configured issuer: kube discovers it on first use (claimResolver.Verifier).
    const path = `/claims/${++n}`;
    claimSource.serve(path, await signer(B).sign({ iss: B.url, aud: 'kubernetes', sub: 'alice', exp: now + 600, groups: ['from-b'] }));
    await add('distributed', 'groups-distributed, JWT of another issuer', A, base(A, { ...email, _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: `${claimSource.url}${path}` } } }));
  }
  await add('kube-case', 'invalid-signature', A, base(A, email), { keyOf: B });
  await add('kube-case', 'expired', A, base(A, { ...email, exp: now - 60 }));
  await add('kube-case', 'invalid-aud', A, base(A, { ...email, aud: 'not-kubernetes' }));
  await add('kube-case', 'multiple-audiences', A, base(A, { ...email, aud: ['not-kubernetes', 'kubernetes'] }));
  await add('kube-case', 'invalid-issuer', A, base(A, { ...email, iss: 'https://127.0.0.1:1/not-configured' }));
  await add('kube-case', 'ps256', A, base(A, email), { alg: 'PS256' });
  await add('kube-case', 'rs384', A, base(A, email), { alg: 'RS384' });
  await add('kube-case', 'es256', A, base(A, email), { alg: 'ES256' });
  await add('kube-case', 'empty username is allowed via claim', A, base(A, { ...email, email: '' }));
  await add('kube-case', 'minimum valid jwt payload', A, { iss: A.url, aud: 'kubernetes', exp: now + 600, email: 'min@example.com' });
  await add('kube-case', 'credential id from a string jti', A, base(A, { ...email, jti: 'jti-1' }));
  await add('kube-case', 'non-string jti claim does not set credential id', A, base(A, { ...email, jti: 42 }));
  await add('kube-case', 'a typ header other than JWT', A, base(A, email), { typ: 'at+jwt' });
  await add('kube-case', 'unknown kid', A, base(A, email), { kid: 'no-such-key' });
  // Issuer B: prefix, a required claim, two audiences.
  await add('kube-case', 'username-prefix, required-claim', B, base(B, { tenant: 'acme', roles: ['r1'] }));
  await add('kube-case', 'no-required-claim', B, base(B, { roles: ['r1'] }));
  await add('kube-case', 'invalid-required-claim', B, base(B, { tenant: 'other' }));
  await add('kube-case', 'required claim of another type', B, base(B, { tenant: ['acme'] }));
  await add('kube-case', 'multiple-audiences in authentication config', B, base(B, { tenant: 'acme', aud: 'other-client' }));
  await add('kube-case', 'multiple-audiences, multiple matches', B, base(B, { tenant: 'acme', aud: ['other-client', 'kubernetes'] }));
  await add('kube-case', 'multiple-audiences, no match', B, base(B, { tenant: 'acme', aud: ['x', 'y'] }));
  // Issuer C: CEL.
  await add('cel', 'username claim mapping with expression', C, base(C));
  await add('cel', 'groups, uid and extra from expressions', C, base(C, { groups: ['dev', 'ops'], uid: 'u-1', tenant: 't1', roles: ['admin', 'viewer'] }));
  await add('cel', 'groups expression gives a string', C, base(C, { groups: 'single' }));
  await add('cel', 'extra claim mapping, empty string value for key', C, base(C, { tenant: '' }));
  await add('cel', 'claim validation rule with expression fails', C, base(C, { blocked: true }));
  await add('cel', 'user validation rule fails for user.username', C, base(C, { sub: 'system:admin' }));
  await add('cel', 'user validation rule fails for user.groups', C, base(C, { groups: ['system:masters'] }));
  await add('cel', 'username expression on a missing claim', C, { iss: C.url, aud: 'kubernetes', exp: now + 600 });
  await add('cel', 'username expression on a number', C, base(C, { sub: 7 }));
  await add('cel', 'groups expression of mixed types', C, base(C, { groups: ['a', 1] }));
  await add('cel', 'uid expression gives a number', C, base(C, { uid: 5 }));
  // Issuer D: nested claims, optionals, string functions.
  await add('cel', 'claim mappings with deeply nested claims', D, base(D, { org: { name: 'acme', teams: ['blue', 'red'] }, scope: 'read write', nick: 'ally' }));
  await add('cel', 'nested claim missing: optional default', D, base(D));
  await add('cel', 'nested claim rule refuses', D, base(D, { org: { active: false } }));
  await add('cel', 'email when verified', D, base(D, { email: 'alice@example.com', email_verified: true }));
  await add('cel', 'teams of another type', D, base(D, { org: { teams: 'blue' } }));
  // kube's CEL libraries (sets, lists, strings.quote, regex find/findAll, two-variable comprehensions) and string(double).
  for (const nick of ['alice', 'Bob', 'zoë🙂a', 'r2d2', 'quote"d\\', 'ñandú', '🙂🙂a1']) await add('cel-library', `libraries over nick ${nick}`, D, base(D, { nick }));
  for (const exp of [now + 600, now + 600.5, 1e10, 99999999999]) await add('cel-library', `string(double) of exp ${exp}`, D, base(D, { exp }));
  await add('cel-library', 'split + [] stays a native list: refused as extra', D, base(D, { scopes: 'a,b' }));
  await add('cel-library', 'two-variable rule refuses a blocked team', D, base(D, { org: { teams: ['blocked'] } }));
  // kube's ip, cidr, url and semver libraries: values Go's parsers take or refuse in ways others do not.
  for (const addr of KUBE_LIBRARY_VALUES.addr) await add('cel-library', `ip library over ${JSON.stringify(addr)}`, D, base(D, { addr }));
  for (const net of KUBE_LIBRARY_VALUES.net) await add('cel-library', `cidr library over ${JSON.stringify(net)}`, D, base(D, { net }));
  for (const site of KUBE_LIBRARY_VALUES.site) await add('cel-library', `url library over ${JSON.stringify(site)}`, D, base(D, { site }));
  for (const ver of KUBE_LIBRARY_VALUES.ver) await add('cel-library', `semver library over ${JSON.stringify(ver)}`, D, base(D, { ver }));
  for (const quota of KUBE_LIBRARY_VALUES.quota) await add('cel-library', `quantity library over ${JSON.stringify(quota)}`, D, base(D, { quota }));
  for (const label of KUBE_LIBRARY_VALUES.label) await add('cel-library', `named formats over ${JSON.stringify(label)}`, D, base(D, { label }));
  await add('cel-library', 'ip() of a good address and url() of a good URL', D, base(D, { strict: '::1', strict_url: 'https://[::1]:6443/x' }));
  await add('cel-library', 'ip() of a bad address refuses the token', D, base(D, { strict: '010.0.0.1', strict_url: 'https://h' }));
  await add('cel-library', 'url() of a relative URL refuses the token', D, base(D, { strict: '10.0.0.1', strict_url: 'h/x' }));
  await add('cel-library', 'ip() of a number refuses the token', D, base(D, { strict: 7, strict_url: 'https://h' }));

  // Go's decoder takes every key that folds to a typed field, in turn (go-json.ts); found
  // by the random corpus (seed 1153701930: exp null, then EXP ahead).
  await add('go-json', 'exp null, then EXP ahead', A, base(A, { ...email, exp: null, EXP: now + 600 }));
  await add('go-json', 'exp a word, then EXP ahead', A, base(A, { ...email, exp: 'soon', EXP: now + 600 }));
  await add('go-json', 'exp past, then EXP ahead', A, base(A, { ...email, exp: now - 60, EXP: now + 600 }));
  await add('go-json', 'iss, then ISS null', A, base(A, { ...email, ISS: null }));
  await add('go-json', 'iss, then ISS another issuer', A, base(A, { ...email, ISS: B.url }));
  await add('go-json', 'sub a number, then SUB a string', A, base(A, { ...email, sub: 7, SUB: 'x' }));
  await add('go-json', 'nbf ahead, then NBF null', A, base(A, { ...email, nbf: now + 600, NBF: null }));
  await add('go-json', 'aud elsewhere, then AUD null', A, base(A, { ...email, aud: 'kubernetes', AUD: null }));
  await add('go-json', '_claim_names, then _CLAIM_NAMES: one map', A, base(A, { ...email, groups: ['g'], _claim_names: { roles: 'gone' }, _CLAIM_NAMES: { other: 'src1' }, _claim_sources: { src1: { endpoint: 'https://127.0.0.1:9/x' } } }));
  await add('go-json', '_claim_names, then _CLAIM_NAMES null', A, base(A, { ...email, groups: ['g'], _claim_names: { roles: 'gone' }, _CLAIM_NAMES: null }));
  await add('go-json', 'a groups source whose JWT is a number', A, base(A, { ...email, _claim_names: { groups: 'src1' }, _claim_sources: { src1: { JWT: 5 } } }));

  // Not signed JWTs, and the Authorization header's edges.
  const good = await signer(A).sign(base(A, email));
  out.push({ klass: 'header', name: 'text after the token', authorization: `Bearer ${good} trailing` });
  out.push({ klass: 'header', name: 'lower-case scheme', authorization: `bearer ${good}` });
  out.push({ klass: 'header', name: 'two spaces', authorization: `Bearer  ${good}` });
  out.push({ klass: 'header', name: 'not a JWT', authorization: 'Bearer not-a-jwt' });
  const [h, p] = good.split('.');
  out.push({ klass: 'header', name: 'alg none', authorization: `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.` });
  out.push({ klass: 'header', name: 'signature cut', authorization: `Bearer ${h}.${p}.` });

  const random = seededRandom(seed);
  for (let i = 0; i < randomCount; i++) {
    const issuer = [A, B, C, D][Math.floor(random() * 4)];
    const { claims, header } = randomClaims(random, issuer, issuers, now);
    await add(`random-${issuer.name}`, `random #${i}`, issuer, claims, header);
  }
  return out;
}

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)];

/** Values for kube's ip, cidr, url and semver libraries: fixed cases, and drawn for random tokens. */
const KUBE_LIBRARY_VALUES = {
  addr: ['10.1.2.3', '127.0.0.1', '::1', '2001:DB8:0:0:0:0:0:1', '::ffff:10.0.0.1', 'fe80::1%eth0', 'fe80::1', '010.0.0.1', '1.2.3', '0.0.0.0', '255.255.255.255', '::1.2.3.4', '1:2:3:4:5:6:7:8:9', ''],
  net: ['10.0.0.0/8', '10.1.2.3/8', '10.1.0.0/16', '2001:db8::1/33', '::ffff:10.0.0.0/104', '10.0.0.0/08', '10.0.0.0/33', '0.0.0.0/0', '::/0', 'fe80::%eth0/64', '10.0.0.0'],
  site: [
    'https://example.com:8443/a/b?x=1&y=2&x=3#frag', 'HTTPS://Example.COM', 'https://[::1]:6443/p', 'https://[fe80::1%25eth0]/', 'https://a:1:2/',
    'foo://a:1:2/', 'https://user:p@ss@host/x', 'https://h/a%2Fb/c d', 'https://h/%41?a+b=c%20d&e=%zz&f;g=1', '/only/a/path', 'mailto:a@example.com',
    'example.com/x', 'https://[1.2.3.4]/', 'https://h/é?q=é', '*', '',
  ],
  ver: ['1.2.3', 'v1.29.0', 'v1.30', '1', '1.2.3-rc.1+build', '01.02.03', 'v1.2.3-', '1.2.3.4', 'latest', '18446744073709551616.0.0'],
  quota: [
    '1', '1000m', '1.5Gi', '1536Mi', '0.3Ki', '100Ei', '9223372036854775807', '12345678901234567890', '1e-20', '1e3', '1E', '-250m', '0.0000000001',
    '1e4294967296', '.', 'Ki', '1 Gi', '1GB', '',
  ],
  label: [
    'my-name', 'My_Name', 'a.b', 'a'.repeat(64), '-', 'x-', 'example.com/Key', '/k', 'a/b/c', 'https://h/x', 'h/x', 'https://[::1', 'é\u0001',
    '123e4567-e89b-12d3-a456-426614174000', 'aGVsbG8=', '2024-02-29', '2023-02-29', '2023-01-01T10:20:30Z', '2023-01-01t10:20:30.5+01:00', '2023-01-01T24:00:00Z', '',
    'uri', 'dns1035Label',
  ],
};

const STRINGS = ['alice', 'Bob', 'zoë', 'ñandú', '用户', '🙂', 'system:masters', 'system:anonymous', 'a,b', 'with space', ' padded ', '', 'x'.repeat(300), 'tab\there', 'émoji🙂', 'UPPER', 'oidc:x'];

function randomValue(random: () => number, depth = 0): unknown {
  const kind = random();
  if (kind < 0.45) return pick(random, STRINGS);
  if (kind < 0.55) return Math.floor(random() * 1000);
  if (kind < 0.6) return random() < 0.5;
  if (kind < 0.65) return null;
  if (kind < 0.85 && depth < 2) return Array.from({ length: Math.floor(random() * 4) }, () => (random() < 0.8 ? pick(random, STRINGS) : randomValue(random, depth + 1)));
  if (depth < 2) return { name: pick(random, STRINGS), teams: randomValue(random, depth + 1), active: random() < 0.8 };
  return pick(random, STRINGS);
}

/** Sometimes present, sometimes not: `undefined` drops the claim. */
const maybe = (random: () => number, p: number, value: () => unknown) => (random() < p ? value() : undefined);

function timeClaim(random: () => number, now: number, around: number): unknown {
  const r = random();
  if (r < 0.7) return around;
  if (r < 0.76) return String(around); // a numeric string
  if (r < 0.8) return around + 0.5;
  if (r < 0.83) return null;
  if (r < 0.87) return now - 1;
  if (r < 0.91) return now + 1;
  if (r < 0.94) return 'soon';
  if (r < 0.96) return '';
  return now;
}

function randomClaims(random: () => number, issuer: CorpusIssuer, all: Record<string, CorpusIssuer>, now: number) {
  const claims: Record<string, unknown> = {
    iss: issuer.url,
    aud: random() < 0.85 ? pick(random, ['kubernetes', ['kubernetes'], ['x', 'kubernetes']]) : pick(random, ['other-client', 'x', [], 7]),
    sub: random() < 0.95 ? pick(random, STRINGS) : randomValue(random),
    exp: maybe(random, 0.95, () => timeClaim(random, now, now + 600)),
    iat: maybe(random, 0.8, () => timeClaim(random, now, now - 10)),
    nbf: maybe(random, 0.3, () => timeClaim(random, now, now - 10)),
    email: maybe(random, 0.9, () => (random() < 0.85 ? `${pick(random, STRINGS)}@example.com` : randomValue(random))),
    email_verified: maybe(random, 0.6, () => pick(random, [true, true, true, true, false, 'true', null, 1])),
    groups: maybe(random, 0.7, () => randomValue(random)),
    roles: maybe(random, 0.4, () => randomValue(random)),
    tenant: maybe(random, issuer.name === 'B' ? 0.9 : 0.5, () => (random() < 0.8 ? 'acme' : randomValue(random))),
    uid: maybe(random, 0.4, () => randomValue(random)),
    org: maybe(random, 0.5, () => ({ name: randomValue(random, 1), teams: randomValue(random, 1), ...(random() < 0.3 ? { active: randomValue(random, 2) } : {}) })),
    scope: maybe(random, 0.4, () => (random() < 0.7 ? 'read write  admin' : randomValue(random))),
    nick: maybe(random, 0.3, () => randomValue(random)),
    scopes: maybe(random, 0.05, () => pick(random, ['a,b', 'x', ''])),
    blocked: maybe(random, 0.1, () => random() < 0.5),
    jti: maybe(random, 0.4, () => (random() < 0.7 ? `j-${Math.floor(random() * 1e6)}` : randomValue(random))),
    nonce: maybe(random, 0.1, () => (random() < 0.7 ? pick(random, STRINGS) : randomValue(random))),
    at_hash: maybe(random, 0.05, () => (random() < 0.7 ? pick(random, STRINGS) : randomValue(random))),
  };
  if (issuer.name === 'D') {
    for (const key of ['addr', 'net', 'site', 'ver', 'quota', 'label'] as const) if (random() < 0.25) claims[key] = random() < 0.8 ? pick(random, KUBE_LIBRARY_VALUES[key]) : randomValue(random);
  }
  // Go's encoding/json matches keys case-insensitively: EXP, AUD, NBF.
  if (random() < 0.05) claims[pick(random, ['EXP', 'Aud', 'NBF', 'Iss'])] = pick(random, [now + 600, now - 600, 'x', issuer.url, 'kubernetes']);
  for (const key of Object.keys(claims)) if (claims[key] === undefined) delete claims[key];
  const r = random();
  const header = r < 0.06 ? { alg: 'ES256' } : r < 0.08 ? { keyOf: pick(random, Object.values(all).filter((i) => i !== issuer)) } : r < 0.1 ? { alg: 'PS256' } : undefined;
  return { claims, header };
}
