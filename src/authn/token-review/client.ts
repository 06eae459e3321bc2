/**
 * One TokenReview v1 call: POST the token, read back the status. As kube's
 * webhook client does (k8s.io/apiserver@v0.37.2 plugin/pkg/authenticator/token/webhook/webhook.go,
 * pkg/util/webhook/webhook.go): JSON, a hard timeout over the whole call,
 * retries with backoff (500 ms × 1.5, 5 attempts) only for a 429, 500 or 504
 * answer or a reset connection, and any other failure is an error, never an
 * answer. The token goes in the body only: it is never logged, and no error
 * built here contains it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { ReviewEndpoint } from './kubeconfig.js';

/** What the reviewer said about a token. */
export type ReviewAnswer =
  | { readonly authenticated: true; readonly user: ReviewedUser }
  | { readonly authenticated: false; readonly error?: string };

export interface ReviewedUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

/** The reviewer could not be asked, or its answer is unusable: fail closed, do not cache. */
export class ReviewUnavailableError extends Error {
  override readonly name = 'ReviewUnavailableError';
}

export interface ReviewCallOptions {
  readonly timeoutMs: number;
  /** First retry delay; kube's is 500 ms. */
  readonly retryDelayMs?: number;
}

const MAX_ATTEMPTS = 5;
const MAX_ANSWER_BYTES = 1 << 20;
const RETRY_STATUS = new Set([429, 500, 504]);

/** A failure worth another attempt (kube's DefaultShouldRetry). */
class Retriable extends ReviewUnavailableError {}

async function readCapped(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) throw new ReviewUnavailableError(`answer larger than ${MAX_ANSWER_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** The status of a TokenReview answer, checked as strictly as Go's typed decoding would. */
export function readAnswer(body: string): ReviewAnswer {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new ReviewUnavailableError('answer is not JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw new ReviewUnavailableError('answer is not a JSON object');
  const review = doc as Record<string, unknown>;
  if (review.apiVersion !== 'authentication.k8s.io/v1' || review.kind !== 'TokenReview') {
    throw new ReviewUnavailableError('answer is not a TokenReview of authentication.k8s.io/v1');
  }
  const status = (review.status ?? {}) as Record<string, unknown>;
  if (typeof status !== 'object' || Array.isArray(status)) throw new ReviewUnavailableError('answer has no status object');
  const authenticatedField = status.authenticated ?? false;
  if (typeof authenticatedField !== 'boolean') throw new ReviewUnavailableError('status.authenticated is not true or false');
  if (status.error !== undefined && typeof status.error !== 'string') throw new ReviewUnavailableError('status.error is not a string');
  if (!authenticatedField) return status.error ? { authenticated: false, error: status.error } : { authenticated: false };

  const user = (status.user ?? {}) as Record<string, unknown>;
  const { username, uid, groups = [], extra = {} } = user;
  if (typeof username !== 'string' || username === '') throw new ReviewUnavailableError('authenticated without status.user.username');
  if (uid !== undefined && typeof uid !== 'string') throw new ReviewUnavailableError('status.user.uid is not a string');
  if (!isStringList(groups)) throw new ReviewUnavailableError('status.user.groups is not a list of strings');
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra) || !Object.values(extra).every(isStringList)) {
    throw new ReviewUnavailableError('status.user.extra is not a map of string lists');
  }
  return { authenticated: true, user: { username, ...(uid ? { uid } : {}), groups, extra: extra as Record<string, string[]> } };
}

async function attempt(endpoint: ReviewEndpoint, url: URL, body: string, signal: AbortSignal): Promise<ReviewAnswer> {
  const bearer = await endpoint.bearer();
  let response;
  try {
    response = await request(url, {
      method: 'POST',
      dispatcher: endpoint.agent,
      signal,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      },
      body,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (signal.aborted) throw new ReviewUnavailableError('timed out');
    const why = `cannot reach ${url.host}: ${code ?? (err as Error).message}`;
    throw code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' ? new Retriable(why) : new ReviewUnavailableError(why);
  }
  const text = await readCapped(response.body).catch((err: unknown) => {
    throw err instanceof ReviewUnavailableError ? err : new ReviewUnavailableError(signal.aborted ? 'timed out' : 'answer cut off');
  });
  if (response.statusCode < 200 || response.statusCode > 299) {
    const why = `answered HTTP ${response.statusCode}`;
    throw RETRY_STATUS.has(response.statusCode) ? new Retriable(why) : new ReviewUnavailableError(why);
  }
  return readAnswer(text);
}

/**
 * Sends `token` for review to `url` (the webhook's own URL, or kube-apiserver's
 * tokenreviews resource) and returns the answer.
 *
 * @throws {ReviewUnavailableError} when no usable answer came in time.
 */
export async function reviewToken(endpoint: ReviewEndpoint, url: URL, token: string, options: ReviewCallOptions): Promise<ReviewAnswer> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
  let delay = options.retryDelayMs ?? 500;
  for (let n = 1; ; n++) {
    try {
      return await attempt(endpoint, url, body, signal);
    } catch (err) {
      if (!(err instanceof Retriable) || n === MAX_ATTEMPTS || signal.aborted) throw err;
      const jittered = delay * (1 + Math.random() * 0.2);
      delay *= 1.5;
      await sleep(jittered, undefined, { signal }).catch(() => {
        throw new ReviewUnavailableError(`timed out after ${n} attempts (${err.message})`);
      });
    }
  }
}
