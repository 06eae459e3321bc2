/**
 * The no-auth build's request authenticator: everyone is the same user, so
 * the proxy skips only token parsing, verification and the token cache and
 * keeps every other stage. noauth-register.ts puts this module in place of
 * src/authn/request-authenticator.js when the real proxy loads.
 */
import type { IncomingMessage } from 'node:http';
import { authenticated, type AuthOutcome, type TokenAuthenticator } from '../src/authn/identity.js';

/** The identity the bench tokens carry, as the JWT authenticator maps it. */
const outcome: AuthOutcome = authenticated({
  username: 'bench@example.com',
  uid: 'bench',
  groups: ['oidc:developers', 'oidc:infrastructure'],
  extra: {},
  authMethod: 'jwt',
});
const always = Promise.resolve(outcome);

export function createRequestAuthenticator(_tokens: TokenAuthenticator): (req: IncomingMessage) => Promise<AuthOutcome> {
  return () => always;
}
