/**
 * kube-apiserver's requestheader authenticator, rewritten line for line from
 * k8s.io/apiserver pkg/authentication/request/headerrequest (requestheader.go)
 * and request/x509 (the CA verifier wrapped around it), so the dev upstream
 * trusts exactly what a real API server would.
 */
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/** Kubernetes' user.Info as the requestheader authenticator builds it. */
export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

/** The `--requestheader-*` flags. */
export interface RequestHeaderConfig {
  /** CNs allowed to assert identities; empty means any certificate the CA signed. */
  readonly allowedNames: readonly string[];
  readonly user: readonly string[];
  readonly group: readonly string[];
  readonly extraPrefix: readonly string[];
  readonly uid: readonly string[];
}

/** kubeadm's (and so kind's) settings. */
export const kubeadmRequestHeader: RequestHeaderConfig = Object.freeze({
  allowedNames: Object.freeze(['front-proxy-client']),
  user: Object.freeze(['X-Remote-User']),
  group: Object.freeze(['X-Remote-Group']),
  extraPrefix: Object.freeze(['X-Remote-Extra-']),
  uid: Object.freeze(['X-Remote-Uid']),
});

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

/**
 * Whether the connection's client certificate may assert identities: it
 * chained to the requestheader CA during the handshake (the server's `ca`
 * option is that CA), may be used for client auth, and its CN is allowed.
 */
export function peerTrusted(socket: TLSSocket, allowedNames: readonly string[]): boolean {
  if (!socket.authorized) return false;
  const raw = socket.getPeerCertificate().raw;
  if (!raw) return false;
  const cert = new X509Certificate(raw);
  // Go's x509 treats a certificate without the extension as good for any use.
  const usages = cert.keyUsage;
  if (usages && !usages.includes(CLIENT_AUTH) && !usages.includes(ANY_EKU)) return false;
  if (allowedNames.length === 0) return true;
  const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1];
  return cn !== undefined && allowedNames.includes(cn);
}

/** Node hands header values over as latin1; Go sees the raw bytes, which we read as UTF-8. */
const bytesAsUtf8 = (value: string) => Buffer.from(value, 'latin1').toString('utf8');

/**
 * net/textproto's trim: spaces and tabs off both ends of every value, nothing
 * else (not U+00A0, not a tab inside). Node's parser trims the same and, like
 * Go, answers 400 for any other control byte; trimming here keeps the
 * imitation from depending on it.
 */
const goTrim = (value: string) => value.replace(/^[ \t]+|[ \t]+$/g, '');

/** Header lines as [name, value] pairs, values as Go's net/http hands them to kube-apiserver. */
export function headerLines(rawHeaders: readonly string[]): Array<[string, string]> {
  const lines: Array<[string, string]> = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    lines.push([rawHeaders[i], bytesAsUtf8(goTrim(rawHeaders[i + 1]))]);
  }
  return lines;
}

const hasPrefixFold = (s: string, prefix: string) => s.length >= prefix.length && s.slice(0, prefix.length).toLowerCase() === prefix.toLowerCase();

/** Go's http.Header.Get: the first line's value of that header, empty if none. */
const firstValue = (lines: ReadonlyArray<[string, string]>, name: string) =>
  lines.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1] ?? '';

/** headerValue: the first header name whose first value is non-empty. */
function headerValue(lines: ReadonlyArray<[string, string]>, names: readonly string[]): string {
  for (const name of names) {
    const value = firstValue(lines, name);
    if (value.length > 0) return value;
  }
  return '';
}

/** allHeaderValues: every non-empty value of every listed header, one per line. */
function allHeaderValues(lines: ReadonlyArray<[string, string]>, names: readonly string[]): string[] {
  return names.flatMap((name) => lines.filter(([n, v]) => n.toLowerCase() === name.toLowerCase() && v.length > 0).map(([, v]) => v));
}

/**
 * Go's url.PathUnescape. A malformed escape returns undefined; kube then keeps
 * the key as it came ("always record extra strings, even if malformed").
 */
export function pathUnescape(s: string): string | undefined {
  if (/%(?![0-9a-fA-F]{2})/.test(s)) return undefined;
  // Header names reach us as latin1 strings, one char per byte, so latin1 round-trips them exactly.
  const bytes = s.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

/**
 * newExtra: headers under each prefix, key lower-cased then unescaped (so an
 * upper-case letter arrives only as `%XX`), every value kept, empty ones too.
 */
function newExtra(lines: ReadonlyArray<[string, string]>, prefixes: readonly string[]): Record<string, string[]> {
  const extra: Record<string, string[]> = {};
  for (const prefix of prefixes) {
    for (const [name, value] of lines) {
      if (!hasPrefixFold(name, prefix)) continue;
      const encoded = name.slice(prefix.length).toLowerCase();
      const key = pathUnescape(encoded) ?? encoded;
      (extra[key] ??= []).push(value);
    }
  }
  return extra;
}

/**
 * Authenticates one request (or upgrade) the way kube-apiserver's
 * requestheader authenticator does. Null means "not authenticated": no
 * trusted client certificate, or no user name header.
 */
export function authenticateRequestHeader(
  socket: TLSSocket,
  rawHeaders: readonly string[],
  config: RequestHeaderConfig,
): UserInfo | null {
  if (!peerTrusted(socket, config.allowedNames)) return null;
  const lines = headerLines(rawHeaders);
  const username = headerValue(lines, config.user);
  if (username.length === 0) return null;
  const uid = headerValue(lines, config.uid);
  return {
    username,
    ...(uid.length > 0 && { uid }),
    groups: allHeaderValues(lines, config.group),
    extra: newExtra(lines, config.extraPrefix),
  };
}
