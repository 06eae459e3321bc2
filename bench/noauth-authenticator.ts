/**
 * The no-auth build: the real command line and proxy with its authenticator
 * replaced, through startProxy's dependency seam, by a constant identity. The
 * proxy then skips only token parsing, verification and the token cache and
 * keeps every other stage, which is what scenario 3 compares with.
 * Run as `node bench/noauth-authenticator.js --config FILE` (cluster workers
 * run this same file, so they get the same authenticator).
 */
import type { RequestAuthenticator } from '../src/authn/authenticator.js';
import { runCommand } from '../src/command.js';
import { authenticated } from '../src/request/identity.js';

/** The identity the bench tokens carry, as the JWT authenticator maps it. */
const always = Promise.resolve(
  authenticated({
    username: 'bench@example.com',
    uid: 'bench',
    groups: ['oidc:developers', 'oidc:infrastructure'],
    extra: {},
    authMethod: 'jwt',
  }),
);
const noAuth: RequestAuthenticator = () => always;

runCommand(process.argv.slice(2), { authenticate: noAuth }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`no-auth proxy: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
