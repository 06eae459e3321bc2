/**
 * The two secrets of browser login, read at start from a file or the
 * environment. A missing or weak secret stops the start with the key to fix.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/errors.js';
import type { SessionConfig } from '../config/schema.js';

/** express-session signs with HMAC-SHA256; shorter secrets are guessable. */
const MIN_COOKIE_SECRET_BYTES = 32;

export interface LoginSecrets {
  /** Undefined for a public client (PKCE only). */
  readonly clientSecret: string | undefined;
  /** The first signs new cookies; all verify (rotation). */
  readonly cookieSecrets: string[];
}

export function readLoginSecrets(config: SessionConfig, env: NodeJS.ProcessEnv = process.env): LoginSecrets {
  const fromFile = (file: string | undefined) => (file ? readFileSync(file, 'utf8') : undefined);
  const clientSecret = (fromFile(config.oidc.clientSecretFile) ?? env.KFP_OIDC_CLIENT_SECRET)?.trim() || undefined;
  const cookieText = fromFile(config.cookie.secretFile) ?? env.KFP_COOKIE_SECRET ?? '';
  const cookieSecrets = cookieText
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  if (cookieSecrets.length === 0 || cookieSecrets.some((s) => Buffer.byteLength(s) < MIN_COOKIE_SECRET_BYTES)) {
    throw new ConfigError([
      {
        path: 'authentication.session.cookie.secretFile',
        message: `needs a secret of at least ${MIN_COOKIE_SECRET_BYTES} bytes per line (in the file, or in KFP_COOKIE_SECRET); make one with: openssl rand -base64 48`,
      },
    ]);
  }
  return { clientSecret, cookieSecrets };
}
