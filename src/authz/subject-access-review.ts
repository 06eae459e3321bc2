/**
 * May the caller impersonate each target? Asked of kube-apiserver with
 * SubjectAccessReview (authorization.k8s.io/v1), as the proxy itself (which
 * needs `create` on subjectaccessreviews: system:auth-delegator). The review
 * names the caller exactly as kube-apiserver would know them by requestheader,
 * system:authenticated included, so RBAC bound to that group counts.
 *
 * Fail closed: an error, a timeout or an unreadable answer is a refusal.
 */
import type { Dispatcher } from 'undici';
import type { Identity } from '../request/identity.js';
import type { ImpersonationCheck } from './impersonation-request.js';

export type ImpersonationVerdict = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

export interface ReviewTransport {
  /** The upstream's pool (the proxy's TLS credential) and its Host. */
  readonly pool: Dispatcher;
  readonly host: string;
  /** The proxy's own Authorization line, when its credential is a token. */
  readonly credentialHeaders: () => string[];
  readonly timeoutMs: number;
}

const PATH = '/apis/authorization.k8s.io/v1/subjectaccessreviews';
const MAX_ANSWER_BYTES = 1 << 20;

/** The caller's groups as kube's AuthenticatedGroupAdder leaves them. */
function groupsAsKubeSeesThem(identity: Identity): string[] {
  const groups = [...identity.groups];
  if (identity.username !== 'system:anonymous' && !groups.some((g) => g === 'system:authenticated' || g === 'system:unauthenticated')) {
    groups.push('system:authenticated');
  }
  return groups;
}

async function review(identity: Identity, check: ImpersonationCheck, transport: ReviewTransport): Promise<ImpersonationVerdict> {
  const body = JSON.stringify({
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: identity.username,
      groups: groupsAsKubeSeesThem(identity),
      ...(identity.uid && { uid: identity.uid }),
      extra: identity.extra,
      // As kube's impersonation filter asks: the kind's version (v1 for users, groups, service
      // accounts, uids and userextras), which a webhook authorizer may read.
      resourceAttributes: { verb: 'impersonate', version: 'v1', ...check },
    },
  });
  const what = `${check.resource}${check.subresource === undefined ? '' : `/${check.subresource}`} ${JSON.stringify(check.name)}`;
  try {
    const answer = await transport.pool.request({
      path: PATH,
      method: 'POST',
      headers: ['Host', transport.host, 'Content-Type', 'application/json', 'Accept', 'application/json', ...transport.credentialHeaders()],
      body,
      headersTimeout: transport.timeoutMs,
      bodyTimeout: transport.timeoutMs,
      signal: AbortSignal.timeout(transport.timeoutMs),
    });
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const chunk of answer.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) throw new Error('answer too large');
      chunks.push(chunk);
    }
    if (answer.statusCode !== 201 && answer.statusCode !== 200) {
      return { allowed: false, reason: `SubjectAccessReview for ${what} answered HTTP ${answer.statusCode} (the proxy needs create on subjectaccessreviews: system:auth-delegator)` };
    }
    const status = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { status?: { allowed?: unknown; reason?: unknown } }).status;
    if (status?.allowed === true) return { allowed: true };
    return { allowed: false, reason: `may not impersonate ${what}${typeof status?.reason === 'string' && status.reason ? `: ${status.reason}` : ''}` };
  } catch (err) {
    return { allowed: false, reason: `SubjectAccessReview for ${what} failed: ${(err as Error).message}` };
  }
}

/** Allowed only if every check is; otherwise the first refusal in the client's order, as kube-apiserver reports it. */
export async function mayImpersonate(identity: Identity, checks: readonly ImpersonationCheck[], transport: ReviewTransport): Promise<ImpersonationVerdict> {
  const verdicts = await Promise.all(checks.map((check) => review(identity, check, transport)));
  return verdicts.find((v) => !v.allowed) ?? { allowed: true };
}
