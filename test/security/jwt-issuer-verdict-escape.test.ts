// Attack class: a JWT of a configured issuer that slips out of its issuer's verdict.
//
// The bearer chain (src/authn/token-chain.ts) lets the JWT issuer's refusal stand alone
// (no webhook, static file or passthrough may rescue it) only when the token "is a JWT".
// The issuer is picked with kube's reading of the payload (Go decodes invalid UTF-8 as
// U+FFFD), but "is a JWT" was asked of jose's decodeJwt, whose strict UTF-8 decoder
// throws on the same bytes. One 0xff byte in any claim made a forged token of our own
// issuer count as "not a JWT": it went on to the webhook and to passthrough.
import t from 'tap';
import { pino } from 'pino';
import { tokenAuthenticatorChain } from '../../src/authn/token-chain.js';
import { createJwtAuthenticator } from '../../src/authn/jwt/index.js';
import { authenticated } from '../../src/request/identity.js';
import type { TokenAuthenticator } from '../../src/authn/authenticator.js';
import type { JwtAuthenticatorConfig } from '../../src/config/schema.js';

const ISSUER = 'https://issuer.invalid';
const b64 = (bytes: string | Buffer) => Buffer.from(bytes).toString('base64url');
const forged = (payload: Buffer) => `${b64(JSON.stringify({ alg: 'RS256', kid: 'k' }))}.${b64(payload)}.${b64('not a signature')}`;

const jwt = createJwtAuthenticator(
  [{ issuer: { url: ISSUER, audiences: ['kubernetes'] }, claimMappings: { username: { claim: 'sub', prefix: '' } }, claimValidationRules: [], userValidationRules: [], jwksRefetchInterval: 60_000 } as unknown as JwtAuthenticatorConfig],
  { logger: pino({ level: 'silent' }), cacheTTLms: 0, cacheMaxEntries: 0 },
);
t.teardown(() => jwt.close());

const asked: string[] = [];
const webhook: TokenAuthenticator = {
  authenticateToken: async (token) => (asked.push(token), authenticated({ username: 'rescued', groups: [], extra: {}, authMethod: 'webhook' })),
  ready: () => true,
  close: async () => {},
};

const payloads = {
  'valid UTF-8': Buffer.from(JSON.stringify({ iss: ISSUER, sub: 'mallory', aud: 'kubernetes', exp: 9_999_999_999 })),
  'an invalid UTF-8 byte in a claim': Buffer.concat([Buffer.from(`{"iss":"${ISSUER}","sub":"mallory","aud":"kubernetes","exp":9999999999,"x":"`), Buffer.from([0xff]), Buffer.from('"}')]),
  'an invalid UTF-8 byte in iss\'s key order (a case variant of iss)': Buffer.concat([Buffer.from(`{"ISS":"${ISSUER}","y":"`), Buffer.from([0xc3]), Buffer.from('"}')]),
};

for (const [name, payload] of Object.entries(payloads)) {
  t.test(`a forged token of our issuer with ${name} is decided by the issuer alone`, async (t) => {
    asked.length = 0;
    const token = forged(payload);
    const issuerVerdict = await jwt.authenticateToken(token);
    t.equal(issuerVerdict.kind, 'rejected', 'the issuer refuses it');
    t.same(await tokenAuthenticatorChain({ jwt, others: [webhook], passthrough: false }).authenticateToken(token), issuerVerdict, 'no webhook rescues it');
    t.same(asked, [], 'the webhook never sees a token of our issuer');
    t.same(await tokenAuthenticatorChain({ jwt, others: [], passthrough: true }).authenticateToken(token), issuerVerdict, 'it is not passed through');
  });
}
