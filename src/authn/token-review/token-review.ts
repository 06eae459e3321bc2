/**
 * Tokens checked by kube-apiserver's own TokenReview API, as delegated
 * authentication does it (k8s.io/apiserver@v0.37.2
 * pkg/authentication/authenticatorfactory/delegating.go: the webhook token
 * authenticator over the authentication.k8s.io/v1 client, cached with one TTL
 * for yes and no). The proxy calls with its own credentials: a kubeconfig, or
 * the in-cluster service account, whose projected token is re-read as the
 * kubelet rotates it. It needs the system:auth-delegator ClusterRole.
 * No audiences are sent: kube-apiserver checks the token against its own.
 */
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../observe/logger.js';
import type { TokenAuthenticator } from '../authenticator.js';
import { endpointFromKubeconfig, endpointInCluster, SERVICE_ACCOUNT_DIR } from './kubeconfig.js';
import { createReviewAuthenticator } from './review-authenticator.js';
import type { ReviewTuning } from './webhook.js';

type TokenReviewConfig = NonNullable<Config['authentication']['tokenReview']>;

export interface TokenReviewOptions extends ReviewTuning {
  /** Where the in-cluster token and ca.crt are (default /var/run/secrets/kubernetes.io/serviceaccount). */
  readonly serviceAccountDir?: string;
  /** KUBERNETES_SERVICE_HOST/PORT come from here (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
}

/** kube-apiserver's tokenreviews resource under the kubeconfig's server (which may carry a path prefix). */
export function tokenReviewsURL(server: URL): URL {
  const url = new URL(server);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/apis/authentication.k8s.io/v1/tokenreviews`;
  return url;
}

export async function createTokenReviewAuthenticator(config: TokenReviewConfig, logger: Logger, options: TokenReviewOptions = {}): Promise<TokenAuthenticator> {
  const connectTimeoutMs = Math.min(config.timeout, 5_000);
  const endpoint =
    config.kubeconfig !== undefined
      ? await endpointFromKubeconfig(config.kubeconfig, connectTimeoutMs)
      : await endpointInCluster(options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR, options.env ?? process.env, connectTimeoutMs);
  logger.info({ server: endpoint.server.host, cacheTTLMs: config.cacheTTL, inCluster: config.kubeconfig === undefined }, 'TokenReview configured');
  const { serviceAccountDir: _dir, env: _env, ...tuning } = options;
  return createReviewAuthenticator({
    method: 'token_review',
    endpoint,
    url: tokenReviewsURL(endpoint.server),
    cacheTTLMs: config.cacheTTL,
    timeoutMs: config.timeout,
    logger,
    ...tuning,
  });
}
