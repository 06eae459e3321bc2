/**
 * Load-time checks of the files authentication reads tokens and credentials
 * from: the static token CSV and the kubeconfigs of the upstream, the
 * webhook and TokenReview. A line kube-apiserver would refuse to start on is a config
 * problem naming the key, the line and the fix, instead of a surprise at the
 * first request. Files that cannot be read at all are checkFiles' (files.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ConfigProblem } from './errors.js';
import { kubeconfigFiles, parseKubeconfig, type KubeconfigTarget } from './kubeconfig.js';
import { parseTokenFile } from './token-file.js';
import type { UpstreamIdentity } from './upstream-schema.js';

/** The keys read here, as the parsed configuration holds them (paths absolute). */
export interface CredentialFileKeys {
  readonly upstream?: { readonly identity: UpstreamIdentity; readonly kubeconfig?: string | undefined } | undefined;
  readonly authentication: {
    readonly staticTokenFile?: string | undefined;
    readonly webhook?: { readonly configFile: string } | undefined;
    readonly tokenReview?: { readonly kubeconfig?: string | undefined } | undefined;
  };
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined; // reported by checkFiles
  }
}

function kubeconfigProblems(key: string, file: string, extra: (target: KubeconfigTarget) => string[] = () => []): ConfigProblem[] {
  const source = readText(file);
  if (source === undefined) return [];
  const result = parseKubeconfig(source, file);
  if (!result.ok) return result.problems.map((message) => ({ path: key, message: `${file}: ${message}` }));
  const more = extra(result.target).map((message) => ({ path: key, message: `${file}: ${message}` }));
  return kubeconfigFiles(result.target)
    .filter(({ file: named }) => !existsSync(named))
    .map(({ what, file: named }) => ({ path: key, message: `${file}: ${what} ${named} not found (paths in a kubeconfig are relative to its folder)` }))
    .concat(more);
}

/** What the upstream's kubeconfig must give besides being a kubeconfig: an origin, and a credential the mode can use. */
function upstreamKubeconfigRules(identity: UpstreamIdentity) {
  return (target: KubeconfigTarget): string[] => {
    const problems: string[] = [];
    if (target.server.pathname !== '/') problems.push(`server ${target.server.href} has a path; the proxy forwards each request's own path, write only https://host:port`);
    const hasToken = target.token !== undefined || target.tokenFile !== undefined;
    if (identity === 'requestheader' && target.clientCert === undefined) {
      problems.push('the user has no client certificate; in identity: requestheader kube-apiserver trusts identity headers only over one (or set identity: impersonation)');
    } else if (identity === 'impersonation' && target.clientCert === undefined && !hasToken) {
      problems.push("the user has no credential; impersonation needs the proxy's own client certificate, token or tokenFile");
    }
    return problems;
  };
}

/**
 * Problems in the credential files the configuration names, each under its
 * key: `authentication.staticTokenFile`, `authentication.webhook.configFile`,
 * `authentication.tokenReview.kubeconfig`.
 */
export function checkCredentialFiles(config: CredentialFileKeys): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (config.upstream?.kubeconfig !== undefined) {
    problems.push(...kubeconfigProblems('upstream.kubeconfig', config.upstream.kubeconfig, upstreamKubeconfigRules(config.upstream.identity)));
  }
  const { staticTokenFile, webhook, tokenReview } = config.authentication;
  if (staticTokenFile !== undefined) {
    const source = readText(staticTokenFile);
    if (source !== undefined) {
      const parsed = parseTokenFile(source);
      for (const { line, message } of parsed.errors) {
        problems.push({ path: 'authentication.staticTokenFile', message: `${staticTokenFile} line ${line}: ${message}` });
      }
    }
  }
  if (webhook) problems.push(...kubeconfigProblems('authentication.webhook.configFile', webhook.configFile));
  if (tokenReview?.kubeconfig !== undefined) problems.push(...kubeconfigProblems('authentication.tokenReview.kubeconfig', tokenReview.kubeconfig));
  return problems;
}
