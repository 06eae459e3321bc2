/**
 * Where the upstream is and how the proxy proves who it is there: from the
 * upstream keys, or from the current context of upstream.kubeconfig (parsed
 * by src/config/kubeconfig.ts, which the loader has already checked). Read
 * again on every reload, so a renewed certificate or a rotated token in a
 * kubeconfig is picked up like one named directly.
 */
import { readFileSync } from 'node:fs';
import type { UpstreamConfig } from '../config/schema.js';
import { kubeconfigFiles, parseKubeconfig, type PemSource } from '../config/kubeconfig.js';

export interface UpstreamEndpoint {
  readonly url: URL;
  readonly ca?: Buffer;
  readonly serverName?: string;
  readonly clientCert?: Buffer;
  readonly clientKey?: Buffer;
  /** A fixed bearer token (kubeconfig `token`). */
  readonly token?: string;
  /** A bearer token file, re-read when it changes (tokenFile, kubeconfig `tokenFile`). */
  readonly tokenFile?: string;
  /** Files whose change means: read the endpoint again (certificates, CA, the kubeconfig). */
  readonly tlsFiles: readonly string[];
}

const read = (source: PemSource | undefined): Buffer | undefined =>
  source === undefined ? undefined : 'pem' in source ? Buffer.from(source.pem) : readFileSync(source.file);

/** The endpoint as configured now; throws with the reason when a file cannot be used. */
export function readUpstreamEndpoint(config: UpstreamConfig): UpstreamEndpoint {
  if (config.kubeconfig === undefined) {
    const { url, caFile, clientCertFile, clientKeyFile, serverName, tokenFile } = config;
    return {
      url: new URL(url as string),
      ...(caFile && { ca: readFileSync(caFile) }),
      ...(serverName !== undefined && { serverName }),
      ...(clientCertFile && clientKeyFile && { clientCert: readFileSync(clientCertFile), clientKey: readFileSync(clientKeyFile) }),
      ...(tokenFile !== undefined && { tokenFile }),
      tlsFiles: [caFile, clientCertFile, clientKeyFile].filter((f): f is string => f !== undefined),
    };
  }
  const result = parseKubeconfig(readFileSync(config.kubeconfig, 'utf8'), config.kubeconfig);
  if (!result.ok) throw new Error(`${config.kubeconfig}: ${result.problems.join('; ')}`);
  const { target } = result;
  return {
    // Requests keep their own path: only the server's origin is used (the loader refuses a path).
    url: new URL(target.server.origin),
    ...(target.ca && { ca: read(target.ca) }),
    ...(target.tlsServerName !== undefined && { serverName: target.tlsServerName }),
    ...(target.clientCert && target.clientKey && { clientCert: read(target.clientCert), clientKey: read(target.clientKey) }),
    ...(target.token !== undefined && { token: target.token }),
    ...(target.tokenFile !== undefined && { tokenFile: target.tokenFile }),
    tlsFiles: [config.kubeconfig, ...kubeconfigFiles(target).filter((f) => f.what !== 'tokenFile').map((f) => f.file)],
  };
}
