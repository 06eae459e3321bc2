/**
 * The configuration contract, defined once. It is the source of validation,
 * of defaults and of docs/configuration.md (every `.describe()` text below is
 * printed there by reference.ts). Keys named in shared/DESIGN.md are fixed;
 * add freely, never rename. Every object is strict: an unknown key is an
 * error, so a typo never silently turns a security setting off.
 *
 * Rules that need several fields run with a `when` guard (see `validAt`), so
 * they still report while other parts of the file are broken: the user sees
 * every problem in one run.
 */
import { z } from 'zod';
import { duration, filePath, hostPort, validAt } from './fields.js';
import { jwtAuthenticatorList } from './jwt-schema.js';
import { upstream } from './upstream-schema.js';
import { routes, type RouteConfig } from './route-schema.js';
import { sessionSchema } from './session-schema.js';

export { isLoopbackHost } from './fields.js';

const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '[::]']);

/** Two listeners cannot share a port on the same host, nor when either listens on every address. Port 0 (any free port, as tests use) never collides. */
function addressesCollide(a: string, b: string): boolean {
  const split = (hp: string) => [hp.slice(0, hp.lastIndexOf(':')), Number(hp.slice(hp.lastIndexOf(':') + 1))] as const;
  const [hostA, portA] = split(a);
  const [hostB, portB] = split(b);
  return portA !== 0 && portA === portB && (hostA === hostB || WILDCARD_HOSTS.has(hostA) || WILDCARD_HOSTS.has(hostB));
}

const tlsFiles = z
  .strictObject({
    certFile: filePath.describe('Serving certificate (PEM; a chain, leaf first).'),
    keyFile: filePath.describe('Private key (PEM) of certFile.'),
    clientCAFile: filePath
      .optional()
      .describe(
        "CA bundle (PEM) that verifies client certificates, as kube-apiserver's --client-ca-file: the proxy asks for a certificate but does not require one; one that verifies gives the user CN and the groups O. Reloaded when it changes.",
      ),
  })
  .describe('The certificate the proxy presents to clients.');

const listen = z
  .strictObject({
    address: hostPort.default('127.0.0.1:8443').describe('Where the proxy serves HTTPS. ":8443" listens on every address.'),
    tls: tlsFiles,
    healthAddress: hostPort
      .default('127.0.0.1:8081')
      .describe('Where plain HTTP serves /healthz, /readyz and /metrics. Keep it off untrusted networks.'),
    maxHeaderBytes: z
      .number()
      .int()
      .min(1024)
      .max(1_048_576)
      .default(32_768)
      .describe("Largest request head a client may send, in bytes (Node's --max-http-header-size)."),
    http2: z
      .boolean()
      .default(true)
      .describe(
        'Offer HTTP/2 (ALPN h2) besides HTTP/1.1. kubectl and client-go then multiplex their requests and watches over one connection; exec, attach and port-forward use HTTP/1.1 either way.',
      ),
    http2MaxConcurrentStreams: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(250)
      .describe("Streams (requests and watches) one HTTP/2 connection may have open at once; kube-apiserver's default, --http2-max-streams-per-connection, is Go's 250."),
    handshakeTimeout: duration
      .prefault('10s')
      .describe('Time a new connection has to finish its TLS handshake; one that sends nothing, or stalls halfway, is closed.'),
    headerTimeout: duration.prefault('20s').describe('Time a client has to send the whole request head: the slowloris guard.'),
    bodyTimeout: duration.prefault('60s').describe('Time a client has to send a whole request body on a short (non-streaming) request.'),
    keepAliveTimeout: duration.prefault('65s').describe('Idle time after which a kept-alive client connection is closed.'),
    shutdownGracePeriod: duration
      .prefault('30s')
      .describe('On SIGTERM: how long short requests may finish before watches and tunnels are closed.'),
    workers: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .describe(
        'Worker processes sharing the listener. Unset: the container\'s cgroup CPU quota rounded up (no quota: one per core), no more than three quarters of its memory limit hold at the measured idle size of a process (docs/operations.md), and 1 when browser sessions use the memory store (each process would have its own sessions; use store.type redis to run several).',
      ),
  })
  .superRefine(
    (l, ctx) => {
      if (addressesCollide(l.address, l.healthAddress)) {
        ctx.addIssue({
          code: 'custom',
          path: ['healthAddress'],
          message: `must differ from listen.address (${l.address}); the health listener is a separate plain-HTTP server on its own port`,
        });
      }
    },
    { when: validAt('address', 'healthAddress') },
  )
  .superRefine(
    (l, ctx) => {
      // server.ts hands bodyTimeout to Node as requestTimeout, which covers the head too; Node refuses to start otherwise.
      if (l.bodyTimeout > 0 && l.headerTimeout > l.bodyTimeout) {
        ctx.addIssue({ code: 'custom', path: ['headerTimeout'], message: 'must not be longer than listen.bodyTimeout, which counts from the start of the request' });
      }
    },
    { when: validAt('headerTimeout', 'bodyTimeout') },
  )
  .superRefine(
    (l, ctx) => {
      // Node reads a handshakeTimeout of 0 as its default, 120 s: a handshake is never unbounded.
      if (l.handshakeTimeout <= 0) ctx.addIssue({ code: 'custom', path: ['handshakeTimeout'], message: 'must be more than 0; a TLS handshake is always bounded' });
    },
    { when: validAt('handshakeTimeout') },
  )
  .describe('The HTTPS listener clients connect to, and the plain-HTTP health listener.');


const authentication = z
  .strictObject({
    allowImpersonationHeaders: z
      .boolean()
      .default(false)
      .describe(
        "Honour clients' Impersonate-* headers (kubectl --as). requestheader mode forwards them and kube-apiserver authorizes them against the caller; impersonation mode first asks kube-apiserver (SubjectAccessReview, which needs system:auth-delegator) whether the caller may impersonate each target, and refuses with 403 otherwise. When false they are refused with 403.",
      ),
    jwt: jwtAuthenticatorList
      .default([])
      .describe("JWT issuers, shaped like kube-apiserver's AuthenticationConfiguration jwt list; a token goes to the entry whose issuer.url equals its iss."),
    configFile: filePath
      .optional()
      .describe(
        "A kube-apiserver AuthenticationConfiguration file (apiserver.config.k8s.io/v1 or v1beta1: what --authentication-config reads), used unchanged: its jwt list replaces authentication.jwt, and it is reloaded when it changes.",
      ),
    x509: z
      .strictObject({
        refuseSystemGroups: z
          .boolean()
          .default(false)
          .describe('Refuse (401) a client certificate whose O names a system: group (system:masters bypasses RBAC): break-glass certificates then need an explicit ClusterRoleBinding.'),
      })
      .prefault({})
      .describe('Client certificates (listen.tls.clientCAFile).'),
    staticTokenFile: filePath
      .optional()
      .describe(
        "Static bearer tokens in kube-apiserver's --token-auth-file CSV format (token,user,uid[,\"group1,group2\"]). For development and kind only: the tokens never expire; a warning is logged at start.",
      ),
    webhook: z
      .strictObject({
        configFile: filePath.describe("A kubeconfig naming the webhook (kube-apiserver's --authentication-token-webhook-config-file); it is sent TokenReview v1."),
        cacheTTL: duration.prefault('2m').describe("How long an answer (yes or no) is remembered (--authentication-token-webhook-cache-ttl)."),
        timeout: duration.prefault('10s').describe('Time the webhook has to answer; a webhook that does not is a refusal (fail closed).'),
      })
      .optional()
      .describe('Bearer tokens vouched for by a TokenReview webhook (Guard, LDAP or cloud IAM bridges).'),
    tokenReview: z
      .strictObject({
        kubeconfig: filePath
          .optional()
          .describe("A kubeconfig for the proxy's own calls to the TokenReview API; unset: the in-cluster service account (its projected token is re-read as it rotates)."),
        cacheTTL: duration.prefault('10s').describe('How long an answer (yes or no) is remembered; a deleted service account\'s token works at most this long.'),
        timeout: duration.prefault('10s').describe('Time kube-apiserver has to answer a TokenReview; one that does not is a refusal (fail closed).'),
      })
      .optional()
      .describe("Bearer tokens (service-account tokens, and any other kube-apiserver accepts) checked with kube-apiserver's TokenReview API, then forwarded as the reviewed identity. The proxy needs system:auth-delegator."),
    passthrough: z
      .boolean()
      .default(false)
      .describe(
        'Forward a bearer token none of the above claims unread, with no identity headers and without the proxy\'s client certificate, for kube-apiserver to decide. The audit line says auth=passthrough.',
      ),
    tokenCacheTTL: duration.prefault('10s').describe("How long a successful token verification is remembered (never past the token's exp)."),
    tokenCacheMaxEntries: z.number().int().min(0).default(10_000).describe('Most verifications remembered at once; 0 turns the cache off.'),
    session: sessionSchema.optional(),
  })
  .superRefine(
    (a, ctx) => {
      const first = new Map<string, number>();
      a.jwt.forEach((j, index) => {
        const earlier = first.get(j.issuer.url);
        if (earlier === undefined) first.set(j.issuer.url, index);
        else {
          ctx.addIssue({
            code: 'custom',
            path: ['jwt', index, 'issuer', 'url'],
            message: `same issuer.url as authentication.jwt[${earlier}]; tokens pick their entry by "iss", so each must be unique`,
          });
        }
      });
    },
    { when: validAt('jwt') },
  )
  .superRefine(
    (a, ctx) => {
      if (a.configFile !== undefined && a.jwt.length > 0) {
        ctx.addIssue({ code: 'custom', path: ['jwt'], message: 'set authentication.configFile or authentication.jwt, not both: the file\'s jwt list replaces this one' });
      }
    },
    { when: validAt('jwt', 'configFile') },
  )
  .superRefine(
    (a, ctx) => {
      // With configFile the pairing is checked when the file is read (it may change later).
      if (!a.session || a.configFile !== undefined) return;
      // The session's id_token is mapped by the jwt entry of its issuer: one mapping path, not two.
      const { issuerURL, clientID } = a.session.oidc;
      const entry = a.jwt.find((j) => j.issuer.url === issuerURL);
      if (!entry) {
        ctx.addIssue({
          code: 'custom',
          path: ['session', 'oidc', 'issuerURL'],
          message: `no authentication.jwt entry has issuer.url ${issuerURL}; add one: it maps the session's id_token to the identity`,
        });
      } else if (!entry.issuer.audiences.includes(clientID)) {
        ctx.addIssue({
          code: 'custom',
          path: ['session', 'oidc', 'clientID'],
          message: `"${clientID}" is not among the audiences of the jwt entry for ${issuerURL}; add it there (with audienceMatchPolicy: MatchAny when there are two), id_tokens are issued for it`,
        });
      }
    },
    { when: validAt('jwt', 'session', 'configFile') },
  )
  .prefault({})
  .describe('How callers prove who they are.');

const audit = z
  .strictObject({
    path: z.string().min(1, 'must not be empty; "-" is stdout').default('-').describe('File the audit log is appended to; "-" is stdout. Its folder must exist.'),
    format: z.enum(['combined', 'json']).default('combined').describe('combined: nginx "combined" plus key=value fields; json: one object per line.'),
  })
  .prefault({})
  .describe('One line per request.');

const log = z
  .strictObject({
    level: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Operational log level (JSON on stderr). The --log-level flag overrides it.'),
  })
  .prefault({})
  .describe('Operational logging.');

export const configSchema = z
  .strictObject({
    listen,
    upstream: upstream.optional(),
    routes: routes.optional(),
    authentication,
    audit,
    log,
  })
  .superRefine((c, ctx) => {
    if (c.upstream === undefined && c.routes === undefined) {
      ctx.addIssue({ code: 'custom', path: ['upstream'], message: 'required: where requests are forwarded (upstream.url), or routes for several upstreams' });
    }
    if (c.upstream !== undefined && c.routes !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['routes'], message: 'set upstream (one upstream for everything) or routes, not both: an unmatched request must never fall to a default upstream' });
    }
  });

/**
 * The routes requests are matched against: `routes`, or the top-level
 * `upstream` as the one route for every host and path, where every
 * authenticated caller may pass.
 */
export function configuredRoutes(config: Config): readonly RouteConfig[] {
  if (config.routes) return config.routes;
  return [{ pathPrefix: '/', upstream: config.upstream as UpstreamConfig, public: false }];
}

/** The configuration as written (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** The validated configuration, with defaults applied, durations in ms and paths absolute. */
export type Config = z.output<typeof configSchema>;
export type JwtAuthenticatorConfig = Config['authentication']['jwt'][number];
export type { SessionConfig } from './session-schema.js';
export type UpstreamConfig = NonNullable<Config['upstream']>;
export type IdentityHeadersConfig = UpstreamConfig['identityHeaders'];
export type { RouteConfig, AllowRule } from './route-schema.js';
