/**
 * How long a stored session may live from now. express-session keeps the
 * absolute lifetime in the cookie (`cookie.expires`); the idle timeout is ours.
 * connect-redis, given a number, would use the cookie's expiry instead of the
 * idle timeout whenever the cookie has one, so both backends ask this instead.
 */
import type { SessionData } from 'express-session';

/** The smaller of the idle timeout and the time left before the cookie expires; <= 0 means already over. */
export function entryTtlMs(sess: Partial<SessionData> | undefined, idleTimeoutMs: number, now = Date.now()): number {
  const expires = sess?.cookie?.expires;
  if (expires == null) return idleTimeoutMs;
  const left = new Date(expires).getTime() - now;
  return Number.isNaN(left) ? idleTimeoutMs : Math.min(idleTimeoutMs, left);
}
