/**
 * Static bearer tokens from a file in kube-apiserver's --token-auth-file
 * format (src/config/token-file.ts reads it as kube does). For development and
 * kind only: the tokens never expire and live in a file, so a warning is
 * logged at start. Like kube, the file is read once; a token not in it is not
 * ours (`absent`), so the chain goes on to the webhook, TokenReview or
 * passthrough. The identity is the file's: kube-apiserver adds
 * system:authenticated itself when it reads the forwarded headers.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseTokenFile, type TokenFileUser } from '../config/token-file.js';
import type { Logger } from '../observe/logger.js';
import { absent, authenticated, type AuthOutcome, type Identity } from '../request/identity.js';
import type { TokenAuthenticator } from './authenticator.js';

/** Tokens are kept by their SHA-256 only: a heap dump holds no usable token. */
const digest = (token: string): string => createHash('sha256').update(token).digest('base64url');

function identityOf(user: TokenFileUser): Identity {
  return { username: user.username, ...(user.uid !== '' && { uid: user.uid }), groups: user.groups, extra: {}, authMethod: 'static_token' };
}

/**
 * Reads `file` and answers for the tokens in it.
 *
 * @throws when the file cannot be read or has a line kube-apiserver would
 * refuse (loadConfig reports those as config problems first).
 */
export async function createStaticTokenAuthenticator(file: string, logger: Logger): Promise<TokenAuthenticator> {
  const parsed = parseTokenFile(await readFile(file, 'utf8'));
  if (parsed.errors.length > 0) {
    throw new Error(`authentication.staticTokenFile: ${parsed.errors.map((e) => `${file} line ${e.line}: ${e.message}`).join('; ')}`);
  }
  for (const { line, message } of parsed.warnings) logger.warn({ file, line }, `static token file: ${message}`);
  logger.warn(
    { file, tokens: parsed.tokens.size },
    'static tokens are for development and kind only: they never expire and anyone who reads the file can use them; use OIDC, a webhook or TokenReview in production',
  );

  const outcomes = new Map<string, AuthOutcome>();
  for (const [token, user] of parsed.tokens) outcomes.set(digest(token), authenticated(identityOf(user)));

  return {
    authenticateToken: async (token) => outcomes.get(digest(token)) ?? absent,
    ready: () => true,
    close: async () => {},
  };
}
