/**
 * Operational logs (pino, JSON on stderr). The audit trail is a separate stream
 * (src/audit). Nothing that can carry a credential is ever passed to a logger:
 * the redact list is a second line of defence, not the first.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** `destination` is a file path or descriptor; stderr by default. */
export function createLogger(level: string = 'info', destination: string | number = 2): Logger {
  return pino(
    {
      level,
      base: { name: 'kube-front-proxy' },
      redact: {
        paths: ['*.authorization', '*.cookie', '*.token', '*.idToken', '*.refreshToken', '*.secret', 'headers.authorization', 'headers.cookie'],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: destination, sync: false }),
  );
}

/** A logger that drops everything, for tests that do not look at logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
