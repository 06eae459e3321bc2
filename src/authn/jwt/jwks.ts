/**
 * One issuer's signing keys, fetched from its `jwks_uri` and kept in memory.
 *
 * Refetch policy:
 * - a token whose key is not in the set (unknown `kid`) triggers a refetch and
 *   waits for it, so a freshly rotated key is accepted at once;
 * - refetches are single-flight and start at most once per `refetchIntervalMs`;
 *   a token that arrives inside the interval waits for the next allowed
 *   refetch rather than failing, so a flood of bogus kids costs the provider at
 *   most one request per interval, however many tokens are waiting;
 * - a set older than `maxAgeMs` is refreshed in the background on next use, so
 *   a key the provider withdrew stops working without a rotation to prompt it.
 *   Lazy rather than on a timer: an idle proxy sends nothing, and the
 *   unknown-kid path already covers new keys;
 * - a failed fetch keeps the set we have.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { errors, type JWTVerifyGetKey } from 'jose';
import type { Dispatcher } from 'undici';
import type { Logger } from '../../observe/logger.js';
import { getJson } from './http.js';
import { keysOf, type VerificationKey } from './signature.js';

const DEFAULT_MAX_AGE_MS = 3_600_000;

/** How a {@link JwksCache} fetches and refreshes. */
export interface JwksOptions {
  /** The issuer's `jwks_uri`. */
  readonly url: string;
  readonly dispatcher: Dispatcher;
  /** Least time between the starts of two fetches (config `jwksRefetchInterval`). */
  readonly refetchIntervalMs: number;
  /** Age after which the set is refreshed on next use. Default 1 h. */
  readonly maxAgeMs?: number;
  readonly logger: Logger;
  /** Aborting it stops fetches and releases waiting tokens (which then fail with an unknown key). */
  readonly signal: AbortSignal;
}

/** One fetch: when it started, its outcome, and a promise that settles (never rejects) when it is over. */
interface Fetch {
  readonly startedAt: number;
  readonly result: Promise<void>;
  readonly done: Promise<void>;
}

/** The JSON Web Key Set of one issuer; see the module comment for when it refetches. */
export class JwksCache {
  readonly #opts: JwksOptions;
  readonly #maxAgeMs: number;
  #keys: readonly VerificationKey[] = [];
  /** performance.now() of the last successful fetch. */
  #fetchedAt = -Infinity;
  #current: Fetch | undefined;
  /** The next refetch, waiting for the interval to pass; shared by every token that needs it. */
  #next: Promise<void> | undefined;

  constructor(opts: JwksOptions) {
    this.#opts = opts;
    this.#maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  }

  /** Fetches the set now; rejects when that fails. An issuer is ready once this has succeeded. */
  load(): Promise<void> {
    return this.#start().result;
  }

  /**
   * The keys that may have signed a token: those whose `kid` is the token's,
   * or every key when the token names none (go-oidc's remoteKeySet.verify).
   * When none fits, waits for a refetch (see the module comment) and looks
   * again; an empty list means even a fresh set lacks the key.
   */
  async candidates(kid: string | undefined): Promise<readonly VerificationKey[]> {
    const arrived = performance.now();
    if (arrived - this.#fetchedAt > this.#maxAgeMs) void this.#refetch(arrived);
    const fitting = () => this.#keys.filter((k) => kid === undefined || kid === '' || k.kid === kid);
    const found = fitting();
    if (found.length > 0) return found;
    await this.#refetch(arrived);
    return fitting();
  }

  /**
   * A key resolver for jose's `jwtVerify` (back-channel logout tokens): the
   * first candidate of the token's key type; jose's `JWKSNoMatchingKey` when none.
   */
  readonly getKey: JWTVerifyGetKey = async (header) => {
    const type = header.alg.startsWith('ES') ? 'ec' : 'rsa';
    const key = (await this.candidates(header.kid)).find((k) => k.key.asymmetricKeyType === type);
    if (!key) throw new errors.JWKSNoMatchingKey();
    return key.key;
  };

  /** Settles once a fetch that started no earlier than `since` is over. */
  #refetch(since: number): Promise<void> {
    // A fetch that started before the token arrived may predate its key: it does not count.
    if (this.#current && this.#current.startedAt >= since) return this.#current.done;
    this.#next ??= this.#scheduleNext();
    return this.#next;
  }

  async #scheduleNext(): Promise<void> {
    const wait = (this.#current?.startedAt ?? -Infinity) + this.#opts.refetchIntervalMs - performance.now();
    try {
      // unref: a token waiting here keeps its own request open; the timer need not hold the process.
      if (wait > 0) await sleep(wait, undefined, { signal: this.#opts.signal, ref: false });
      await this.#current?.done;
    } catch {
      // Closed while waiting: the fetch below fails at once and the waiting tokens are released.
    }
    this.#next = undefined;
    return this.#start().done;
  }

  /** Starts a fetch now and makes it the current one. */
  #start(): Fetch {
    const startedAt = performance.now();
    const result = this.#fetch();
    const done = result.catch((err: unknown) => {
      // A failed first load is the caller's to report: there are no keys to keep yet.
      if (this.#opts.signal.aborted || this.#fetchedAt === -Infinity) return;
      this.#opts.logger.warn(
        { jwksURI: this.#opts.url, err: err instanceof Error ? err.message : String(err) },
        'JWKS fetch failed; keeping the keys we have',
      );
    });
    this.#current = { startedAt, result, done };
    return this.#current;
  }

  async #fetch(): Promise<void> {
    const set = await getJson(this.#opts.url, this.#opts.dispatcher, this.#opts.signal);
    // keysOf throws on anything that is not a key set.
    this.#keys = keysOf(set);
    this.#fetchedAt = performance.now();
    this.#opts.logger.debug({ jwksURI: this.#opts.url, keys: this.#keys.length }, 'JWKS fetched');
  }
}
