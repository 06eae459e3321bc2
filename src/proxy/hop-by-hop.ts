/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, not the
 * message, so neither direction of the proxy passes them on. One list and one
 * reading of `Connection` for requests and responses alike.
 */
import { foldName } from './header-names.js';

/**
 * Always hop-by-hop, besides every `Proxy-*` and every name listed in Connection.
 * `HTTP2-Settings` belongs to an h2c upgrade (RFC 9113 §3.2.1, connection-specific):
 * an upstream that sends it back (Go's reverse proxy passes it on, so a pod behind
 * pods/proxy can) would make Node's HTTP/2 response refuse the whole head.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings']);

/** The names listed in every Connection line, folded (lower case, `_` as `-`). */
export function connectionListed(rawHeaders: readonly string[]): Set<string> {
  return namesListed(connectionValues(rawHeaders));
}

/** The value of every Connection line among raw header lines. */
export function connectionValues(rawHeaders: readonly string[]): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (foldName(rawHeaders[i]) === 'connection') values.push(rawHeaders[i + 1]);
  return values;
}

/** The names Connection values list, folded. */
export function namesListed(connection: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const value of connection) {
    for (const token of value.split(',')) {
      const name = foldName(token.trim());
      if (name) names.add(name);
    }
  }
  return names;
}

/** Whether a (folded) header name is hop-by-hop for a message whose Connection listed `listed`. */
export function isHopByHop(folded: string, listed: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(folded) || folded.startsWith('proxy-') || listed.has(folded);
}
