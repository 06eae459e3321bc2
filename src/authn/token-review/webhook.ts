/**
 * Webhook token authentication in kube's own format: the config file is a
 * kubeconfig whose current context names the webhook (its server URL is
 * POSTed to as is) and the proxy's credentials for it, as kube-apiserver's
 * --authentication-token-webhook-config-file (k8s.io/kubernetes@v1.37.2
 * pkg/kubeapiserver/authenticator/config.go newWebhookTokenAuthenticator).
 * Only TokenReview v1 is spoken (kube's --authentication-token-webhook-version=v1).
 * No audiences are sent, so none are checked: the proxy has no API audiences.
 */
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../observe/logger.js';
import type { TokenAuthenticator } from '../authenticator.js';
import { endpointFromKubeconfig } from './kubeconfig.js';
import { createReviewAuthenticator } from './review-authenticator.js';

type WebhookConfig = NonNullable<Config['authentication']['webhook']>;

export interface ReviewTuning {
  /** First retry delay (kube: 500 ms); tests shorten it. */
  readonly retryDelayMs?: number;
  readonly now?: () => number;
}

/** Reads the webhook's kubeconfig and answers for tokens the webhook vouches for. */
export async function createWebhookTokenAuthenticator(config: WebhookConfig, logger: Logger, tuning: ReviewTuning = {}): Promise<TokenAuthenticator> {
  const endpoint = await endpointFromKubeconfig(config.configFile, Math.min(config.timeout, 5_000));
  logger.info({ server: endpoint.server.host, cacheTTLMs: config.cacheTTL }, 'token webhook configured');
  return createReviewAuthenticator({
    method: 'webhook',
    endpoint,
    url: endpoint.server,
    cacheTTLMs: config.cacheTTL,
    timeoutMs: config.timeout,
    logger,
    ...tuning,
  });
}
