/**
 * kube's url library (k8s.io/apiserver pkg/cel/library/urls.go): url() takes
 * what Go's url.ParseRequestURI takes (an absolute URI or an absolute path)
 * and keeps url.Parse's reading of it (./go-url.ts).
 */
import type { Environment } from '@marcbachmann/cel-js';
import * as goURL from './go-url.js';
import { markNative } from './native-lists.js';
import { KubeValue, registerKubeType } from './opaque.js';

/** cel-go's kubernetes.URL: a *url.URL; equal when their String() is. */
export class URL extends KubeValue {
  constructor(readonly url: goURL.GoURL) {
    super();
  }
  override equals(other: KubeValue): boolean {
    return other instanceof URL && goURL.urlString(this.url) === goURL.urlString(other.url);
  }
}

/** urls.go stringToUrl: ParseRequestURI must accept it; the value is url.Parse's. */
function parse(s: string): URL {
  const binary = goURL.toBinary(s);
  try {
    goURL.parseRequestURI(binary);
    return new URL(goURL.parseURL(binary));
  } catch (err) {
    throw new Error(`URL parse error during conversion from string: parse ${JSON.stringify(s)}: ${(err as Error).message}`, { cause: err });
  }
}

function isURL(s: string): boolean {
  try {
    goURL.parseRequestURI(goURL.toBinary(s));
    return true;
  } catch {
    return false;
  }
}

/** URL.Query as kube returns it: a map of Go []string lists (native: refused as groups or extra). */
function getQuery(u: URL): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const [key, list] of goURL.query(u.url)) values.set(goURL.fromBinary(key), markNative(list.map(goURL.fromBinary)));
  return values;
}

export function registerURL(env: Environment): void {
  registerKubeType(env, 'kubernetes.URL', URL);
  env.registerFunction('url(string): kubernetes.URL', parse);
  env.registerFunction('isURL(string): bool', isURL);
  env.registerFunction('kubernetes.URL.getScheme(): string', (u: URL) => goURL.fromBinary(u.url.scheme));
  env.registerFunction('kubernetes.URL.getHost(): string', (u: URL) => goURL.fromBinary(u.url.host));
  env.registerFunction('kubernetes.URL.getHostname(): string', (u: URL) => goURL.fromBinary(goURL.hostname(u.url)));
  env.registerFunction('kubernetes.URL.getPort(): string', (u: URL) => goURL.fromBinary(goURL.port(u.url)));
  env.registerFunction('kubernetes.URL.getEscapedPath(): string', (u: URL) => goURL.fromBinary(goURL.escapedPath(u.url)));
  env.registerFunction('kubernetes.URL.getQuery(): map<string, list<string>>', getQuery);
}
