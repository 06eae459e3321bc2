/**
 * `upstream`: where requests go, how the proxy proves itself there, and how
 * the caller's identity is told. The same object is each route's upstream
 * (route-schema.ts).
 */
import { z } from 'zod';
import { duration, filePath, headerNames, httpsUrl, parseUrl, validAt } from './fields.js';

const identityHeaderKeys = ['user', 'group', 'extraPrefix', 'uid'] as const;

const identityHeaders = z
  .strictObject({
    user: headerNames.default(['X-Remote-User']).describe('--requestheader-username-headers'),
    group: headerNames.default(['X-Remote-Group']).describe('--requestheader-group-headers (one header line is sent per group)'),
    extraPrefix: headerNames.default(['X-Remote-Extra-']).describe('--requestheader-extra-headers-prefix'),
    uid: headerNames
      .default(['X-Remote-Uid'])
      .describe('--requestheader-uid-headers (Kubernetes 1.32+); sent only when the identity has a uid'),
  })
  .superRefine(
    (h, ctx) => {
      // One name in two roles would let a value meant for one be read as the other.
      const seen = new Map<string, string>();
      for (const key of identityHeaderKeys) {
        for (const name of h[key]) {
          const lower = name.toLowerCase();
          const owner = seen.get(lower);
          if (owner && owner !== key) {
            ctx.addIssue({ code: 'custom', path: [key], message: `"${name}" is already used by identityHeaders.${owner}; each header name may have one role` });
          }
          seen.set(lower, key);
        }
      }
      for (const key of ['user', 'group', 'uid'] as const) {
        for (const name of h[key]) {
          const prefix = h.extraPrefix.find((p) => name.toLowerCase().startsWith(p.toLowerCase()));
          if (prefix) ctx.addIssue({ code: 'custom', path: [key], message: `"${name}" starts with the extra prefix "${prefix}", so kube-apiserver would read it as an extra` });
        }
      }
    },
    { when: validAt(...identityHeaderKeys) },
  )
  .prefault({})
  .describe(
    "Header names that carry the identity; they must match kube-apiserver's --requestheader-* flags. Each is one name or a list: the first is set, all are removed from client requests.",
  );

/** What the upstream is told about the caller. */
export const upstreamIdentity = z
  .enum(['requestheader', 'impersonation', 'application'])
  .default('requestheader')
  .describe(
    "How the caller's identity reaches the upstream. requestheader: the identityHeaders, trusted by kube-apiserver over the proxy's client certificate (--requestheader-client-ca-file). impersonation: Impersonate-User, -Group, -Uid and -Extra-*, with the proxy authenticated as itself (clientCertFile, tokenFile or kubeconfig) and RBAC letting it impersonate; for managed clusters (EKS, GKE, AKS) where the requestheader flags cannot be set. application: the headers oauth2-proxy sets for web applications (X-Forwarded-User, -Email, -Groups, -Preferred-Username; -Access-Token with passAccessToken).",
  );

/** The upstream keys a kubeconfig replaces. */
const KUBECONFIG_REPLACES = ['url', 'caFile', 'serverName', 'clientCertFile', 'clientKeyFile', 'tokenFile'] as const;

/**
 * The upstream's keys. http2 defaults differ: kube-apiserver (the top-level upstream) is
 * built for many streams per connection; an application behind a route may not be.
 */
function upstreamSchema(http2Default: 'off' | 'auto') {
  return z
    .strictObject({
      identity: upstreamIdentity,
      url: httpsUrl(
        'https://127.0.0.1:6443',
        'the identity headers would cross the network in clear text, and anyone who can reach the upstream could send their own and act as any user',
      )
        // Requests keep their own path and go to the URL's origin: a path here would be silently dropped.
        .refine((text) => {
          const url = parseUrl(text);
          return !url || url.pathname === '/';
        }, 'a path is not supported; write only https://host:port')
        .optional()
        .describe('Where requests are forwarded, e.g. https://10.0.0.1:6443. http:// only to a loopback host. Required unless kubeconfig is set.'),
      caFile: filePath.optional().describe("CA bundle (PEM) that verifies the upstream's serving certificate (kubeadm: /etc/kubernetes/pki/ca.crt)."),
      clientCertFile: filePath
        .optional()
        .describe(
          'Client certificate (PEM) the proxy presents upstream. kube-apiserver trusts identity headers only over a certificate signed by its --requestheader-client-ca-file whose CN is in --requestheader-allowed-names. Set together with clientKeyFile.',
        ),
      clientKeyFile: filePath.optional().describe('Private key (PEM) of clientCertFile.'),
      tokenFile: filePath
        .optional()
        .describe(
          "Impersonation only: a bearer token the proxy presents as itself (in a pod, the projected service-account token /var/run/secrets/kubernetes.io/serviceaccount/token). Re-read when the file changes, as the kubelet rotates it.",
        ),
      kubeconfig: filePath
        .optional()
        .describe(
          "A kubeconfig whose current context gives the server, its CA and the proxy's own credential (client certificate, token or tokenFile; not exec plugins). Replaces url, caFile, serverName, clientCertFile, clientKeyFile and tokenFile. Re-read when it changes.",
        ),
      serverName: z.string().optional().describe("TLS server name to verify, when it differs from the URL's host."),
      identityHeaders,
      passAccessToken: z
        .boolean()
        .default(false)
        .describe(
          "identity: application only: also send the caller's access token as X-Forwarded-Access-Token (a bearer token as the client sent it; for a browser session, the provider's access token). The application can then call other APIs as the person.",
        ),
      responseTimeout: duration.prefault('60s').describe('Time a request has to get its response head: first to get a free upstream connection or stream (at upstream.connections; one that gets none is answered 504 and never sent), then again once it is written. A short request also gets it between body chunks; long-running ones (watches, logs, proxy) have no body timeout.'),
      http2: z
        .enum(['off', 'auto'])
        .default(http2Default)
        .describe(
          "HTTP/2 to the upstream. auto: offer h2 by ALPN and, when the upstream picks it (kube-apiserver does), carry watches and other long-running requests (logs, service proxy) as streams of a few shared connections (within its SETTINGS_MAX_CONCURRENT_STREAMS) instead of a connection each; short requests keep HTTP/1.1 keep-alive connections, which cost less CPU per request; if the upstream picks HTTP/1.1, everything goes over HTTP/1.1 as with off. off: HTTP/1.1 only. Upgrades (exec, attach, port-forward) always use HTTP/1.1. An http:// upstream has no ALPN and stays on HTTP/1.1. The default is auto for the top-level upstream and off for a route's: an application whose handlers go on after their client leaves would, over shared connections, let one user's abandoned requests hold everyone's streams (Go's server queues streams past its limit behind running handlers).",
        ),
      connections: z
        .number()
        .int()
        .min(1)
        .optional()
        .describe(
          'Most connections to the upstream at once, for short requests (HTTP/1.1) and, separately, for the HTTP/2 connections that carry long-running ones (http2: auto); unset means no limit. Over HTTP/1.1 (http2: off, or an upstream without h2) every open watch holds one, so a limit also caps concurrent watches. A request that finds none free waits at most responseTimeout.',
        ),
    })
    .superRefine(
      (u, ctx) => {
        if (u.clientCertFile && !u.clientKeyFile) {
          ctx.addIssue({ code: 'custom', path: ['clientKeyFile'], message: 'required when clientCertFile is set: the private key of that certificate' });
        }
        if (u.clientKeyFile && !u.clientCertFile) {
          ctx.addIssue({ code: 'custom', path: ['clientCertFile'], message: 'required when clientKeyFile is set: the certificate of that key' });
        }
      },
      { when: validAt('clientCertFile', 'clientKeyFile') },
    )
    .superRefine(
      (u, ctx) => {
        if (u.kubeconfig !== undefined) {
          for (const key of KUBECONFIG_REPLACES) {
            if (u[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'set in upstream.kubeconfig already; remove one of the two' });
          }
        } else if (u.url === undefined) {
          ctx.addIssue({ code: 'custom', path: ['url'], message: 'required: where requests are forwarded, e.g. https://10.0.0.1:6443 (or set upstream.kubeconfig)' });
        }
        if (u.passAccessToken && u.identity !== 'application') {
          ctx.addIssue({ code: 'custom', path: ['passAccessToken'], message: 'is for identity: application; a Kubernetes upstream must never receive the caller\'s token beside the proxy\'s word for who they are' });
        }
        if (u.identity !== 'impersonation' && u.tokenFile !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['tokenFile'],
            message: 'is for identity: impersonation; kube-apiserver reads identity headers only over the client certificate (clientCertFile), so a token would do nothing',
          });
        }
        if (u.identity === 'impersonation' && u.kubeconfig === undefined && u.clientCertFile === undefined && u.tokenFile === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['identity'],
            message: 'impersonation needs the proxy\'s own credential: set upstream.tokenFile (a service-account token), clientCertFile and clientKeyFile, or kubeconfig',
          });
        }
      },
      { when: validAt('identity', 'url', 'kubeconfig', 'passAccessToken', ...KUBECONFIG_REPLACES) },
    )
    .superRefine(
      (u, ctx) => {
        if (u.url === undefined || new URL(u.url).protocol !== 'http:') return;
        // TLS settings on a plain-http upstream would be silently ignored: refuse rather than mislead.
        for (const key of ['caFile', 'clientCertFile', 'clientKeyFile', 'serverName'] as const) {
          if (u[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'has no effect with an http:// upstream.url; use https:// or remove it' });
        }
      },
      { when: validAt('url', 'caFile', 'clientCertFile', 'clientKeyFile', 'serverName') },
    )
    .describe('The kube-apiserver (or other service) requests are forwarded to: over TLS, mutual with clientCertFile.');
}

export const upstream = upstreamSchema('auto');
/** A route's upstream (the SSO gateway): HTTP/1.1 unless it says http2: auto. */
export const routeUpstream = upstreamSchema('off');

/** upstream.identity: how the caller's identity reaches the upstream. */
export type UpstreamIdentity = z.output<typeof upstreamIdentity>;
