/**
 * A TokenAuthenticator that asks a TokenReview endpoint, behind kube's token
 * cache as kube-apiserver wires it for a webhook and as delegated
 * authentication does (tokencache.New(auth, false, ttl, ttl):
 * k8s.io/apiserver@v0.37.2 pkg/authentication/token/cache/cached_token_authenticator.go):
 * an authenticated answer and a plain "no" are both remembered for the TTL;
 * an error (unreachable, timed out, a bad answer, or a "no" that carries
 * status.error) is not, so the next request asks again. Every error fails
 * closed.
 */
import type { Logger } from '../../observe/logger.js';
import { authenticated, rejected, type AuthMethod, type AuthOutcome } from '../../request/identity.js';
import type { TokenAuthenticator } from '../authenticator.js';
import { createTokenCache, type Verified } from '../token-cache.js';
import { reviewToken, ReviewUnavailableError } from './client.js';
import type { ReviewEndpoint } from './kubeconfig.js';

export interface ReviewAuthenticatorOptions {
  readonly method: Extract<AuthMethod, 'webhook' | 'token_review'>;
  readonly endpoint: ReviewEndpoint;
  /** Where the review is POSTed. */
  readonly url: URL;
  readonly cacheTTLMs: number;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly maxEntries?: number;
  readonly retryDelayMs?: number;
  readonly now?: () => number;
}

/** What a reviewer wrote in status.error, short and without the token (a careless reviewer may echo it). */
const safeError = (error: string, token: string): string => (token ? error.split(token).join('[token]') : error).slice(0, 200);

export function createReviewAuthenticator(options: ReviewAuthenticatorOptions): TokenAuthenticator {
  const { method, endpoint, url, logger } = options;
  const now = options.now ?? Date.now;
  const log = logger.child({ authenticator: method, server: url.host });

  const verify = async (token: string): Promise<Verified<AuthOutcome>> => {
    const cacheUntil = now() + options.cacheTTLMs;
    try {
      const answer = await reviewToken(endpoint, url, token, { timeoutMs: options.timeoutMs, ...(options.retryDelayMs !== undefined && { retryDelayMs: options.retryDelayMs }) });
      if (answer.authenticated) {
        return { value: authenticated({ ...answer.user, authMethod: method }), cacheUntil };
      }
      if (answer.error !== undefined) {
        log.info({ error: safeError(answer.error, token) }, 'token review: not authenticated, with an error (not cached)');
        return { value: rejected('token_review_denied') };
      }
      return { value: rejected('token_review_denied'), cacheUntil };
    } catch (err) {
      const reason = err instanceof ReviewUnavailableError ? err.message : 'unexpected failure';
      if (!(err instanceof ReviewUnavailableError)) log.error({ err: (err as Error).name }, 'token review failed unexpectedly');
      log.warn({ reason }, 'token review unavailable: the token is refused (fail closed)');
      return { value: rejected('token_review_unavailable') };
    }
  };

  const cached = createTokenCache(verify, { ttlMs: options.cacheTTLMs, maxEntries: options.maxEntries ?? 10_000, now });
  return {
    authenticateToken: cached,
    ready: () => true,
    close: () => endpoint.agent.close(),
  };
}
