/**
 * A client's own Impersonate-* headers (kubectl --as, --as-group, --as-uid,
 * --as-user-extra) read as kube-apiserver's impersonation filter reads them
 * (k8s.io/apiserver@v0.37.2 pkg/endpoints/filters/impersonation/impersonation.go,
 * buildImpersonationRequests): the first Impersonate-User and Impersonate-Uid,
 * every Impersonate-Group, and Impersonate-Extra-<key> with the key lower-cased
 * and then path-unescaped. Each is one right to check: the verb `impersonate`
 * on the resource kube's filter names, and nothing is honoured unless all are.
 *
 * Only the dashed spellings count, as in Go's canonical header keys; an
 * `Impersonate_User` is dropped by the header rules and never honoured.
 */
import type { Identity } from '../request/identity.js';

/** One `impersonate` check, as SubjectAccessReview resourceAttributes. */
export interface ImpersonationCheck {
  readonly group: '' | 'authentication.k8s.io';
  readonly resource: 'users' | 'groups' | 'serviceaccounts' | 'uids' | 'userextras';
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name: string;
}

/** Who the client asks to be, as the upstream will build it from these headers. */
export interface ImpersonationTarget {
  readonly username: string;
  readonly groups: readonly string[];
  readonly uid?: string;
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

export type ImpersonationRequest =
  | { readonly kind: 'none' }
  | { readonly kind: 'request'; readonly target: ImpersonationTarget; readonly checks: readonly ImpersonationCheck[] }
  /** kube-apiserver answers these with 400: groups, uid or extras without a user. */
  | { readonly kind: 'invalid'; readonly message: string };

const EXTRA_PREFIX = 'impersonate-extra-';
const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';
// apimachinery's DNS-1123 label (namespace) and subdomain (service account name).
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** serviceaccount.SplitUsername: namespace and name, or undefined for an ordinary user name. */
export function serviceAccountOf(username: string): { namespace: string; name: string } | undefined {
  if (!username.startsWith(SERVICE_ACCOUNT_PREFIX)) return undefined;
  const parts = username.slice(SERVICE_ACCOUNT_PREFIX.length).split(':');
  if (parts.length !== 2) return undefined;
  const [namespace, name] = parts;
  if (namespace.length > 63 || !DNS_LABEL.test(namespace) || name.length > 253 || !DNS_SUBDOMAIN.test(name)) return undefined;
  return { namespace, name };
}

/** Go's url.PathUnescape, or undefined where Go returns an error (kube then keeps the key as it is). */
function pathUnescape(key: string): string | undefined {
  if (/%(?![0-9a-fA-F]{2})/.test(key)) return undefined;
  return Buffer.from(key.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
}

/**
 * The client's impersonation request from its raw header lines. Header values
 * arrive as latin1 strings of their bytes (Node), so they are decoded as the
 * UTF-8 Go would read.
 */
export function readImpersonationRequest(rawHeaders: readonly string[]): ImpersonationRequest {
  let username: string | undefined;
  let uid: string | undefined;
  const groups: string[] = [];
  const extra: Record<string, string[]> = {};
  let any = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    const value = Buffer.from(rawHeaders[i + 1], 'latin1').toString('utf8');
    if (name === 'impersonate-user') username ??= value;
    else if (name === 'impersonate-uid') uid ??= value;
    else if (name === 'impersonate-group') groups.push(value);
    else if (name.startsWith(EXTRA_PREFIX)) {
      const encoded = name.slice(EXTRA_PREFIX.length);
      (extra[pathUnescape(encoded) ?? encoded] ??= []).push(value);
    } else continue;
    any = true;
  }
  if (!any) return { kind: 'none' };
  // Go's Header.Get: an empty first value is as good as none.
  const hasUser = username !== undefined && username !== '';
  const hasUid = uid !== undefined && uid !== '';
  if (!hasUser) {
    if (groups.length || Object.keys(extra).length || hasUid) return { kind: 'invalid', message: 'requested groups, extras or a uid without impersonating a user' };
    return { kind: 'none' };
  }
  const user = username as string;
  const checks: ImpersonationCheck[] = [];
  const account = serviceAccountOf(user);
  checks.push(account ? { group: '', resource: 'serviceaccounts', namespace: account.namespace, name: account.name } : { group: '', resource: 'users', name: user });
  for (const group of groups) checks.push({ group: '', resource: 'groups', name: group });
  for (const [key, values] of Object.entries(extra)) {
    for (const value of values) checks.push({ group: 'authentication.k8s.io', resource: 'userextras', subresource: key, name: value });
  }
  if (hasUid) checks.push({ group: 'authentication.k8s.io', resource: 'uids', name: uid as string });
  return { kind: 'request', target: { username: user, groups, ...(hasUid && { uid }), extra }, checks };
}

/**
 * The authenticated identity as the upstream's impersonation filter will
 * rebuild it, made to equal what requestheader gives (kube's
 * AuthenticatedGroupAdder): or undefined where no Impersonate-* lines can.
 *
 * - `system:anonymous` would be given system:unauthenticated: not representable.
 * - No groups: kube would add a service account's groups to a
 *   system:serviceaccount:… name; naming system:authenticated, which
 *   requestheader would add, keeps the two modes the same.
 */
export function impersonatedIdentity(identity: Identity): Identity | undefined {
  if (identity.username === 'system:anonymous') return undefined;
  if (identity.groups.length > 0) return identity;
  return { ...identity, groups: ['system:authenticated'] };
}
