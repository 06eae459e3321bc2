/**
 * What every conversation with an identity provider shares, written once for
 * the JWT authenticator, the browser login and back-channel logout: the HTTP
 * agent (the provider's own CA, bounded timeouts), the signing algorithms we
 * accept, and the retry loop that keeps trying discovery until it works or
 * the proxy stops.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';

/** kube-apiserver's list: the nine asymmetric JWS algorithms; never `none`, never HMAC. */
export const ALLOWED_ALGORITHMS: readonly string[] = Object.freeze(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512']);

const CONNECT_TIMEOUT_MS = 5_000;
/** The whole request, connect to last byte; kube's client allows 30 s, a login should not wait that long. */
const REQUEST_TIMEOUT_MS = 10_000;

/** Where the provider's CA comes from: inline PEM (as kube's `certificateAuthority`) or a file. */
export interface ProviderCA {
  readonly pem?: string | undefined;
  readonly file?: string | undefined;
}

/**
 * An Agent for one provider. With a CA given, only that CA is trusted (as
 * kube-apiserver does); otherwise Node's default CA store.
 */
export async function providerAgent(ca: ProviderCA): Promise<Agent> {
  const pem = ca.pem ?? (ca.file ? await readFile(ca.file, 'utf8') : undefined);
  return new Agent({
    connect: { timeout: CONNECT_TIMEOUT_MS, ...(pem ? { ca: pem } : {}) },
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
}

const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 10_000;

export interface RetryOptions {
  /** Stops the loop, the wait between attempts included. */
  readonly signal: AbortSignal;
  /** Told of each failure and how long until the next attempt. */
  readonly onFailure: (failure: { attempt: number; retryInMs: number; err: string }) => void;
}

/**
 * Runs `attempt` until it resolves, backing off from 250 ms to 10 s; resolves
 * with its attempt number, or undefined once `signal` aborts.
 */
export async function retryUntilDone(attempt: (n: number) => Promise<void>, options: RetryOptions): Promise<number | undefined> {
  const { signal } = options;
  for (let n = 1, delay = RETRY_FIRST_MS; !signal.aborted; n++, delay = Math.min(delay * 2, RETRY_MAX_MS)) {
    try {
      await attempt(n);
      return n;
    } catch (err) {
      if (signal.aborted) return undefined;
      options.onFailure({ attempt: n, retryInMs: delay, err: err instanceof Error ? err.message : String(err) });
      await sleep(delay, undefined, { signal, ref: false }).catch(() => {});
    }
  }
  return undefined;
}
