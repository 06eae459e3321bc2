/**
 * Scenario 7's credentials, besides the JWTs of bench/tokens.ts: a client CA and
 * a certificate it signed (x509), a static token file in kube's --token-auth-file
 * format, opaque tokens the upstream's reviewers authenticate (webhook and
 * TokenReview), passthrough tokens the upstream accepts itself, and the two
 * kubeconfigs that point the proxy at those reviewers (over the front-proxy
 * client certificate the upstream already trusts).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCA, issueCertificate } from '../dev/pki.js';
import { PASSTHROUGH_PREFIX, REVIEWED_PREFIX, WEBHOOK_PATH } from './fixtures.js';
import type { ServerEnv } from './servers/server.js';
import { writeTokens } from './tokens.js';

export interface BenchCredentials {
  /** listen.tls.clientCAFile. */
  readonly clientCA: string;
  /** A client certificate (CN=bench-admin) and key that clientCA verifies. */
  readonly clientCert: string;
  readonly clientKey: string;
  /** authentication.staticTokenFile, and its tokens as the load generator reads them. */
  readonly staticTokenFile: string;
  readonly staticTokens: string;
  /** authentication.webhook.configFile and authentication.tokenReview.kubeconfig. */
  readonly webhookKubeconfig: string;
  readonly tokenReviewKubeconfig: string;
  /** Tokens the reviewers authenticate: one list for the webhook, another for TokenReview. */
  readonly webhookTokens: string;
  readonly tokenReviewTokens: string;
  readonly passthroughTokens: string;
}

const opaque = (prefix: string, count: number): string[] => Array.from({ length: count }, () => `${prefix}${randomBytes(24).toString('base64url')}`);

/** A kubeconfig for `server` with the upstream's CA and the front-proxy client certificate. */
function kubeconfig(env: ServerEnv, server: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'bench', cluster: { server, 'certificate-authority': env.pki.upstreamCA } }],
    users: [{ name: 'bench', user: { 'client-certificate': env.pki.frontProxyClientCert, 'client-key': env.pki.frontProxyClientKey } }],
    contexts: [{ name: 'bench', context: { cluster: 'bench', user: 'bench' } }],
    'current-context': 'bench',
  };
}

/** Writes every file into env.work/credentials-*; `count` distinct tokens per list. */
export async function writeBenchCredentials(env: ServerEnv, count: number): Promise<BenchCredentials> {
  const file = (name: string) => join(env.work, `credentials-${name}`);
  const write = (name: string, text: string) => {
    writeFileSync(file(name), text);
    return file(name);
  };
  const ca = await createCA('kube-front-proxy bench client CA');
  const leaf = await issueCertificate({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, commonName: 'bench-admin', clientAuth: true });
  const statics = opaque('kfp-bench-static.', count);
  return {
    clientCA: write('client-ca.crt', ca.certPem),
    clientCert: write('client.crt', leaf.certPem),
    clientKey: write('client.key', leaf.keyPem),
    staticTokenFile: write('static-tokens.csv', statics.map((t, i) => `${t},bench-static-${i},${i},"bench:static,developers"\n`).join('')),
    staticTokens: writeTokens(file('static-tokens.json'), statics),
    webhookKubeconfig: write('webhook.kubeconfig', JSON.stringify(kubeconfig(env, `${env.upstreamURL}${WEBHOOK_PATH}`))),
    tokenReviewKubeconfig: write('token-review.kubeconfig', JSON.stringify(kubeconfig(env, env.upstreamURL))),
    webhookTokens: writeTokens(file('webhook-tokens.json'), opaque(REVIEWED_PREFIX, count)),
    tokenReviewTokens: writeTokens(file('token-review-tokens.json'), opaque(REVIEWED_PREFIX, count)),
    passthroughTokens: writeTokens(file('passthrough-tokens.json'), opaque(PASSTHROUGH_PREFIX, count)),
  };
}
