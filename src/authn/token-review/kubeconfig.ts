/**
 * Where a TokenReview goes and with which credentials: from a kubeconfig
 * (src/config/kubeconfig.ts parses it) or from the in-cluster service account,
 * as client-go's rest.InClusterConfig builds it
 * (k8s.io/client-go@v0.37.2 rest/config.go: https://KUBERNETES_SERVICE_HOST:PORT,
 * the CA and token in /var/run/secrets/kubernetes.io/serviceaccount). A token
 * file is re-read at most once a minute, as client-go's cached file token
 * source does (transport/token_source.go): the kubelet rotates projected
 * tokens well before they expire.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from 'undici';
import { parseKubeconfig, type PemSource } from '../../config/kubeconfig.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const TOKEN_REREAD_MS = 60_000;

/** A TokenReview destination: the URL, a dedicated agent, and the bearer token to send (if any). */
export interface ReviewEndpoint {
  readonly server: URL;
  readonly agent: Agent;
  /** The proxy's own bearer token for this endpoint, current as of now. */
  readonly bearer: () => Promise<string | undefined>;
}

const pem = async (source: PemSource | undefined): Promise<string | undefined> =>
  source === undefined ? undefined : 'pem' in source ? source.pem : readFile(source.file, 'utf8');

/** A token read from `file`, re-read when older than a minute; on a failed re-read the last good one is kept. */
export function fileTokenSource(file: string, now: () => number = Date.now): () => Promise<string | undefined> {
  let token = readFileSync(file, 'utf8').trim();
  let readAt = now();
  return async () => {
    if (now() - readAt >= TOKEN_REREAD_MS) {
      readAt = now();
      try {
        token = (await readFile(file, 'utf8')).trim();
      } catch {
        // client-go keeps the last token too; the next minute tries again.
      }
    }
    return token;
  };
}

function agentFor(ca: string | undefined, cert: string | undefined, key: string | undefined, servername: string | undefined, connectTimeoutMs: number): Agent {
  return new Agent({
    connect: {
      timeout: connectTimeoutMs,
      ...(ca !== undefined && { ca }),
      ...(cert !== undefined && key !== undefined && { cert, key }),
      ...(servername !== undefined && { servername }),
    },
  });
}

/** The endpoint a kubeconfig names; throws with the kubeconfig's problems when it is unusable. */
export async function endpointFromKubeconfig(file: string, connectTimeoutMs: number): Promise<ReviewEndpoint> {
  const result = parseKubeconfig(await readFile(file, 'utf8'), file);
  if (!result.ok) throw new Error(`${file}: ${result.problems.join('; ')}`);
  const { target } = result;
  const [ca, cert, key] = await Promise.all([pem(target.ca), pem(target.clientCert), pem(target.clientKey)]);
  const bearer = target.token !== undefined ? async () => target.token : target.tokenFile !== undefined ? fileTokenSource(target.tokenFile) : async () => undefined;
  return { server: target.server, agent: agentFor(ca, cert, key, target.tlsServerName, connectTimeoutMs), bearer };
}

/** The in-cluster service account's endpoint; throws when not running in a pod. */
export async function endpointInCluster(dir: string, env: NodeJS.ProcessEnv, connectTimeoutMs: number): Promise<ReviewEndpoint> {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new Error('authentication.tokenReview: not running in a cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT unset); set authentication.tokenReview.kubeconfig');
  }
  const ca = await readFile(join(dir, 'ca.crt'), 'utf8');
  const server = new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`);
  return { server, agent: agentFor(ca, undefined, undefined, undefined, connectTimeoutMs), bearer: fileTokenSource(join(dir, 'token')) };
}
