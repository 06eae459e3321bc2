/**
 * Where browser sessions live. express-session talks to `store`; the rest is
 * what express-session has no word for: a refresh lock shared by every replica
 * (identity providers that rotate refresh tokens must never see one used
 * twice), an index from the identity provider's session to ours (back-channel
 * logout), and health (a cookie request fails closed when the store is down).
 */
import type { Store } from 'express-session';

/** Who a session belongs to at the identity provider, for back-channel logout. */
export interface IdpSession {
  /** The id_token's `sub`. */
  readonly sub: string;
  /** The id_token's `sid`, when the provider issues one. */
  readonly sid?: string;
}

export interface SessionBackend {
  /** The express-session store. Entries expire after the idle timeout unless touched. */
  readonly store: Store;
  /**
   * Runs `fn` while holding the refresh lock of session `id`, shared by every
   * replica using the same backend. Waits up to `waitMs` for another holder;
   * resolves `undefined` without running `fn` if the lock could not be had.
   * The lock expires by itself after `leaseMs` so a crashed holder cannot keep it.
   */
  withRefreshLock<T>(id: string, fn: () => Promise<T>, options?: { waitMs?: number; leaseMs?: number }): Promise<T | undefined>;
  /** Remembers that our session `id` belongs to this identity-provider session. */
  index(id: string, idp: IdpSession): Promise<void>;
  /**
   * Destroys every session of the identity-provider session `sid`, or, given only
   * `sub`, every session of that subject. Returns how many were destroyed.
   */
  destroyByIdp(idp: { sub?: string; sid?: string }): Promise<number>;
  /** False while the backend cannot be reached. */
  healthy(): boolean;
  close(): Promise<void>;
}
