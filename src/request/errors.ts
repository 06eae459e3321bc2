/**
 * Every error the proxy itself answers with, in one registry: a stable code,
 * the HTTP status and the Kubernetes Status reason. Clients (kubectl, client-go)
 * understand Status objects; the code goes to the audit line and metrics.
 * docs/errors.md lists the same table; test/proxy/errors.test.ts keeps them in step.
 */
export const proxyErrors = {
  UNAUTHENTICATED: { status: 401, reason: 'Unauthorized', message: 'Unauthorized' },
  IMPERSONATION_FORBIDDEN: {
    status: 403,
    reason: 'Forbidden',
    message: 'impersonation headers are not allowed through this proxy',
  },
  IMPERSONATION_NOT_AUTHORIZED: {
    status: 403,
    reason: 'Forbidden',
    message: 'you may not impersonate that user, group, uid or extra: kube-apiserver RBAC grants no impersonate on it to you',
  },
  IMPERSONATION_INVALID: {
    status: 400,
    reason: 'BadRequest',
    message: 'Impersonate-Group, Impersonate-Uid and Impersonate-Extra-* need Impersonate-User, and at most 64 of them',
  },
  ROUTE_FORBIDDEN: {
    status: 403,
    reason: 'Forbidden',
    message: 'you are signed in, but this route does not let you in (its allow rule); ask its owner, or sign in as someone else',
  },
  ROUTE_NOT_FOUND: { status: 404, reason: 'NotFound', message: 'no route of this proxy serves this host and path' },
  IDENTITY_NOT_REPRESENTABLE: {
    status: 403,
    reason: 'Forbidden',
    message: 'your identity contains characters that cannot be sent in a request header',
  },
  CROSS_SITE_REQUEST: {
    status: 403,
    reason: 'Forbidden',
    message: 'a request that changes state, or an upgrade, with a session cookie must come from this site (Origin or Referer)',
  },
  SESSION_NOT_ACCEPTED_HERE: {
    status: 403,
    reason: 'Forbidden',
    message: 'a session cookie is not accepted on pods/proxy, services/proxy and nodes/proxy, whose pages share this site; use a bearer token (kubectl proxy)',
  },
  UPGRADE_NOT_SUPPORTED: {
    status: 400,
    reason: 'BadRequest',
    message: 'only SPDY/3.1 and websocket upgrades, without a request body, are tunnelled',
  },
  METHOD_NOT_ALLOWED: { status: 405, reason: 'MethodNotAllowed', message: 'the proxy forwards only GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS' },
  BAD_REQUEST: { status: 400, reason: 'BadRequest', message: 'the request could not be understood by the proxy' },
  REQUEST_TIMEOUT: { status: 408, reason: 'Timeout', message: 'the request was not received in time' },
  HEADERS_TOO_LARGE: { status: 431, reason: 'BadRequest', message: 'the request head is larger than the proxy accepts' },
  UPSTREAM_UNAVAILABLE: {
    status: 503,
    reason: 'ServiceUnavailable',
    message: 'the API server is unavailable: connection refused or unreachable',
  },
  UPSTREAM_BAD_RESPONSE: { status: 502, reason: 'InternalError', message: 'the API server connection failed' },
  UPSTREAM_TIMEOUT: { status: 504, reason: 'Timeout', message: 'the API server did not answer in time' },
  SESSION_STORE_UNAVAILABLE: { status: 503, reason: 'ServiceUnavailable', message: 'sessions cannot be checked right now; bearer tokens still work' },
  INTERNAL: { status: 500, reason: 'InternalError', message: 'internal error in the proxy' },
} as const satisfies Record<string, { status: number; reason: string; message: string }>;

export type ProxyErrorCode = keyof typeof proxyErrors;

/** The Kubernetes Status body for one of our errors. */
export function statusBody(code: ProxyErrorCode, requestId: string): string {
  const { status, reason, message } = proxyErrors[code];
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    // The request id lets an operator find the audit line; it reveals nothing else.
    message: code === 'INTERNAL' ? `${message} (request id ${requestId})` : message,
    reason,
    code: status,
  });
}

/** Response headers that go with a Status error. */
export function statusHeaders(code: ProxyErrorCode, body: string, requestId: string): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    'audit-id': requestId,
  };
  if (code === 'UNAUTHENTICATED') headers['www-authenticate'] = 'Bearer realm="kube-front-proxy"';
  return headers;
}
