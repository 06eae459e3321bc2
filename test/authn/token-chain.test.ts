// The order bearer tokens are asked in (src/authn/token-chain.ts), with scripted
// authenticators: the chain's own rules, not any one credential's.
import t from 'tap';
import { SignJWT } from 'jose';
import type { TokenAuthenticator } from '../../src/authn/authenticator.js';
import { tokenAuthenticatorChain } from '../../src/authn/token-chain.js';
import { absent, authenticated, rejected, type AuthOutcome } from '../../src/request/identity.js';

/** An authenticator that answers `outcome` and records the tokens it was asked about. */
function scripted(outcome: AuthOutcome) {
  const asked: string[] = [];
  let closed = false;
  const authenticator: TokenAuthenticator = {
    authenticateToken: async (token) => (asked.push(token), outcome),
    ready: () => true,
    close: async () => void (closed = true),
  };
  return { authenticator, asked, closed: () => closed };
}

const user = (name: string) => authenticated({ username: name, groups: [], extra: {}, authMethod: 'static_token' });
const jwt = await new SignJWT({ iss: 'https://idp.example' }).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32));

t.test('a JWT the issuer claims is decided by it alone, whatever its verdict', async (t) => {
  for (const verdict of [rejected('bad_signature'), rejected('expired'), rejected('malformed_token'), user('alice')]) {
    const after = scripted(user('mallory'));
    const chain = tokenAuthenticatorChain({ jwt: scripted(verdict).authenticator, others: [after.authenticator], passthrough: true });
    t.same(await chain.authenticateToken(jwt), verdict);
    t.same(after.asked, [], 'nothing after the issuer is asked');
  }
});

t.test('a JWT of an unknown issuer, or an opaque token, goes on in order; the first success decides', async (t) => {
  for (const token of [jwt, 'opaque-token']) {
    const first = scripted(rejected('token_review_denied'));
    const second = scripted(user('bob'));
    const third = scripted(user('carol'));
    const jwtVerdict = token === jwt ? rejected('unknown_issuer') : rejected('malformed_token');
    const chain = tokenAuthenticatorChain({ jwt: scripted(jwtVerdict).authenticator, others: [first, second, third].map((s) => s.authenticator), passthrough: false });
    t.same(await chain.authenticateToken(token), user('bob'), 'a refusal does not stop the next (kube union)');
    t.same(third.asked, [], 'nothing after the first success');
  }
});

t.test('a malformed JWT verdict about a real JWT is final', async (t) => {
  const after = scripted(user('mallory'));
  const chain = tokenAuthenticatorChain({ jwt: scripted(rejected('malformed_token')).authenticator, others: [after.authenticator], passthrough: true });
  t.same(await chain.authenticateToken(jwt), rejected('malformed_token'));
  t.same(after.asked, []);
});

t.test('when nothing claims the token', async (t) => {
  const notMine = scripted(absent);
  t.same(
    await tokenAuthenticatorChain({ jwt: scripted(rejected('malformed_token')).authenticator, others: [notMine.authenticator], passthrough: true }).authenticateToken('x'),
    { kind: 'passthrough' },
    'passthrough forwards it',
  );
  t.same(
    await tokenAuthenticatorChain({ jwt: scripted(rejected('malformed_token')).authenticator, others: [notMine.authenticator], passthrough: false }).authenticateToken('x'),
    rejected('unknown_token'),
    'otherwise unknown_token',
  );
  t.same(
    await tokenAuthenticatorChain({ jwt: scripted(rejected('malformed_token')).authenticator, others: [scripted(rejected('token_review_unavailable')).authenticator, notMine.authenticator], passthrough: false }).authenticateToken('x'),
    rejected('token_review_unavailable'),
    'the first refusal is the reason',
  );
  t.same(
    await tokenAuthenticatorChain({ jwt: scripted(rejected('unknown_issuer')).authenticator, others: [], passthrough: false }).authenticateToken(jwt),
    rejected('unknown_issuer'),
    "with JWT issuers alone, the issuer's reason",
  );
});

t.test('ready and close cover every authenticator', async (t) => {
  const a = scripted(absent);
  const b = scripted(absent);
  const chain = tokenAuthenticatorChain({ jwt: a.authenticator, others: [b.authenticator], passthrough: false });
  t.ok(chain.ready());
  await chain.close();
  t.ok(a.closed() && b.closed());
});
