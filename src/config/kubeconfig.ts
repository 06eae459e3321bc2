/**
 * The part of a kubeconfig a TokenReview client needs: the current context's
 * server, CA and credentials. kube reads its webhook config file the same way
 * (k8s.io/apiserver@v0.37.2 pkg/util/webhook/webhook.go LoadKubeconfig, through
 * client-go tools/clientcmd): the current-context picks the cluster and user,
 * relative paths are relative to the kubeconfig's folder, and client-go's
 * validation.go rules apply (a server is required; data and file of the same
 * thing are not both allowed; a client certificate needs its key).
 *
 * Pure parsing: files named inside are resolved, not read.
 */
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** PEM given inline (a `-data` field, decoded) or as a file (an absolute path). */
export type PemSource = { readonly pem: string } | { readonly file: string };

export interface KubeconfigTarget {
  /** The cluster's `server`, e.g. https://webhook.example:8443/authenticate. */
  readonly server: URL;
  readonly ca?: PemSource;
  /** `tls-server-name`: the name checked in the server's certificate instead of the URL's host. */
  readonly tlsServerName?: string;
  readonly clientCert?: PemSource;
  readonly clientKey?: PemSource;
  /** `token`: a fixed bearer token. */
  readonly token?: string;
  /** `tokenFile`: a bearer token re-read as it rotates (absolute path). */
  readonly tokenFile?: string;
}

export type KubeconfigResult = { readonly ok: true; readonly target: KubeconfigTarget } | { readonly ok: false; readonly problems: readonly string[] };

type Mapping = Record<string, unknown>;
const isMapping = (v: unknown): v is Mapping => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (m: Mapping, key: string): string | undefined => (typeof m[key] === 'string' && m[key] !== '' ? m[key] : undefined);

/** Finds `name` in a kubeconfig list (`clusters`, `users`, `contexts`) and returns its inner mapping. */
function named(doc: Mapping, list: string, inner: string, name: string): Mapping | undefined {
  const items = Array.isArray(doc[list]) ? (doc[list] as unknown[]) : [];
  const item = items.find((i) => isMapping(i) && i.name === name);
  if (!isMapping(item)) return undefined;
  return isMapping(item[inner]) ? item[inner] : {};
}

function names(doc: Mapping, list: string): string {
  const items = Array.isArray(doc[list]) ? (doc[list] as unknown[]) : [];
  const all = items.flatMap((i) => (isMapping(i) && typeof i.name === 'string' ? [JSON.stringify(i.name)] : []));
  return all.length ? all.join(', ') : '(none)';
}

/**
 * One PEM from a `<field>-data` (base64) or `<field>` (path) pair, or a
 * problem. client-go refuses both at once; so do we.
 */
function pemSource(m: Mapping, field: string, base: string, where: string, problems: string[]): PemSource | undefined {
  const data = text(m, `${field}-data`);
  const file = text(m, field);
  if (data !== undefined && file !== undefined) {
    problems.push(`${where} sets both ${field}-data and ${field}; keep one`);
    return undefined;
  }
  if (data !== undefined) {
    const pem = Buffer.from(data, 'base64').toString('utf8');
    if (!pem.includes('-----BEGIN ')) {
      problems.push(`${where} ${field}-data is not base64 of a PEM block; write the output of "base64 -w0 <file>"`);
      return undefined;
    }
    return { pem };
  }
  return file === undefined ? undefined : { file: resolve(base, file) };
}

/** Reads a kubeconfig's text; `file` is where it came from (relative paths inside are resolved against its folder). */
export function parseKubeconfig(source: string, file: string): KubeconfigResult {
  let doc: unknown;
  try {
    doc = parseYaml(source, { maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, problems: [`not valid YAML: ${(err as Error).message.split('\n')[0]}`] };
  }
  if (!isMapping(doc)) return { ok: false, problems: ['not a kubeconfig: expected a mapping with clusters, users, contexts and current-context'] };
  const base = dirname(file);
  const problems: string[] = [];

  const contextName = text(doc, 'current-context');
  if (contextName === undefined) return { ok: false, problems: [`no current-context; set it to one of the contexts: ${names(doc, 'contexts')}`] };
  const context = named(doc, 'contexts', 'context', contextName);
  if (!context) return { ok: false, problems: [`current-context ${JSON.stringify(contextName)} is not in contexts (${names(doc, 'contexts')})`] };

  const clusterName = text(context, 'cluster');
  const userName = text(context, 'user');
  const cluster = clusterName === undefined ? undefined : named(doc, 'clusters', 'cluster', clusterName);
  const user = userName === undefined ? undefined : named(doc, 'users', 'user', userName);
  if (clusterName === undefined) problems.push(`context ${JSON.stringify(contextName)} names no cluster; add cluster: <one of ${names(doc, 'clusters')}>`);
  else if (!cluster) problems.push(`cluster ${JSON.stringify(clusterName)} of context ${JSON.stringify(contextName)} is not in clusters (${names(doc, 'clusters')})`);
  if (userName === undefined) problems.push(`context ${JSON.stringify(contextName)} names no user; add user: <one of ${names(doc, 'users')}> (a user may be empty: user: {})`);
  else if (!user) problems.push(`user ${JSON.stringify(userName)} of context ${JSON.stringify(contextName)} is not in users (${names(doc, 'users')})`);
  if (!cluster || !user) return { ok: false, problems };

  const clusterWhere = `cluster ${JSON.stringify(clusterName)}`;
  const userWhere = `user ${JSON.stringify(userName)}`;
  let server: URL | undefined;
  const serverText = text(cluster, 'server');
  if (serverText === undefined) problems.push(`${clusterWhere} has no server; write server: https://host:port/path`);
  else if (!URL.canParse(serverText) || new URL(serverText).protocol !== 'https:') {
    problems.push(`${clusterWhere} server ${JSON.stringify(serverText)} is not an https:// URL; tokens are only sent over TLS`);
  } else server = new URL(serverText);
  if (cluster['insecure-skip-tls-verify'] === true) {
    problems.push(`${clusterWhere} sets insecure-skip-tls-verify, which would send tokens to any server; give certificate-authority instead`);
  }
  const ca = pemSource(cluster, 'certificate-authority', base, clusterWhere, problems);
  const tlsServerName = text(cluster, 'tls-server-name');

  const clientCert = pemSource(user, 'client-certificate', base, userWhere, problems);
  const clientKey = pemSource(user, 'client-key', base, userWhere, problems);
  if ((clientCert === undefined) !== (clientKey === undefined)) {
    problems.push(`${userWhere} needs both a client certificate and its key (client-certificate[-data] and client-key[-data])`);
  }
  for (const unsupported of ['exec', 'auth-provider', 'username', 'password', 'as']) {
    if (user[unsupported] !== undefined) problems.push(`${userWhere} uses ${unsupported}, which is not supported; use a client certificate, token or tokenFile`);
  }
  const token = text(user, 'token');
  const tokenFileText = text(user, 'tokenFile');

  if (problems.length > 0 || server === undefined) return { ok: false, problems };
  return {
    ok: true,
    target: {
      server,
      ...(ca && { ca }),
      ...(tlsServerName !== undefined && { tlsServerName }),
      ...(clientCert && clientKey && { clientCert, clientKey }),
      // client-go: token wins over tokenFile when both are set (tools/clientcmd/client_config.go).
      ...(token !== undefined ? { token } : tokenFileText !== undefined ? { tokenFile: resolve(base, tokenFileText) } : {}),
    },
  };
}

/** Every file a parsed kubeconfig names, with what it is, for the load-time check. */
export function kubeconfigFiles(target: KubeconfigTarget): { readonly what: string; readonly file: string }[] {
  const files: { what: string; file: string }[] = [];
  const add = (what: string, source: PemSource | undefined) => {
    if (source && 'file' in source) files.push({ what, file: source.file });
  };
  add('certificate-authority', target.ca);
  add('client-certificate', target.clientCert);
  add('client-key', target.clientKey);
  if (target.tokenFile !== undefined) files.push({ what: 'tokenFile', file: target.tokenFile });
  return files;
}
