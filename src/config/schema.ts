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
import { duration, filePath, headerNames, hostPort, httpsUrl, parseUrl, validAt } from './fields.js';
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
        'Worker processes sharing the listener. Unset: one per core, or 1 when browser sessions use the memory store (each process would have its own sessions; use store.type redis to run several).',
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

const upstream = z
  .strictObject({
    url: httpsUrl(
      'https://127.0.0.1:6443',
      'the identity headers would cross the network in clear text, and anyone who can reach the upstream could send their own and act as any user',
    )
      // Requests keep their own path and go to the URL's origin: a path here would be silently dropped.
      .refine((text) => {
        const url = parseUrl(text);
        return !url || url.pathname === '/';
      }, 'a path is not supported; write only https://host:port')
      .describe('Where requests are forwarded, e.g. https://10.0.0.1:6443. http:// only to a loopback host.'),
    caFile: filePath.optional().describe("CA bundle (PEM) that verifies the upstream's serving certificate (kubeadm: /etc/kubernetes/pki/ca.crt)."),
    clientCertFile: filePath
      .optional()
      .describe(
        'Client certificate (PEM) the proxy presents upstream. kube-apiserver trusts identity headers only over a certificate signed by its --requestheader-client-ca-file whose CN is in --requestheader-allowed-names. Set together with clientKeyFile.',
      ),
    clientKeyFile: filePath.optional().describe('Private key (PEM) of clientCertFile.'),
    serverName: z.string().optional().describe("TLS server name to verify, when it differs from the URL's host."),
    identityHeaders,
    responseTimeout: duration.prefault('60s').describe('Time the upstream has to answer a short request with its response head.'),
    connections: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'Most connections to the upstream at once; unset means no limit. Over HTTP/1.1 every open watch holds one, so a limit also caps concurrent watches.',
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
      if (new URL(u.url).protocol !== 'http:') return;
      // TLS settings on a plain-http upstream would be silently ignored: refuse rather than mislead.
      for (const key of ['caFile', 'clientCertFile', 'clientKeyFile', 'serverName'] as const) {
        if (u[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'has no effect with an http:// upstream.url; use https:// or remove it' });
      }
    },
    { when: validAt('url', 'caFile', 'clientCertFile', 'clientKeyFile', 'serverName') },
  )
  .describe('The kube-apiserver (or other service) requests are forwarded to: over TLS, mutual with clientCertFile.');

const prefixed = (what: string) =>
  z.strictObject({
    claim: z.string().min(1, `the ${what} claim name must not be empty`).describe(`Claim holding the ${what}.`),
    // kube-apiserver requires an explicit prefix when a claim is set; so do we,
    // so that one file means the same in both places.
    prefix: z
      .string({ error: (iss) => (iss.input === undefined ? `required; write prefix: "" to use the ${what} claim as is (kube-apiserver requires it too)` : undefined) })
      .describe(`Prepended to ${what === 'groups' ? 'every group' : 'the user name'}; required, "" for none.`),
  });

const jwtIssuer = z
  .strictObject({
    url: httpsUrl('https://idp.example.com', 'keys and discovery fetched in clear text can be replaced by anyone on the path').describe(
      'Issuer URL exactly as the tokens\' "iss" claim spells it (a trailing slash matters).',
    ),
    discoveryURL: httpsUrl('https://idp.internal/.well-known/openid-configuration', 'keys fetched in clear text can be replaced by anyone on the path')
      .optional()
      .describe('Where to fetch the discovery document when not at {url}/.well-known/openid-configuration.'),
    audiences: z
      .array(z.string().min(1))
      .min(1, 'name at least one audience (the client ID tokens are issued for)')
      .refine((a) => new Set(a).size === a.length, 'lists an audience twice')
      .describe('Accepted "aud" values; a token passes if its aud contains any of them.'),
    audienceMatchPolicy: z.literal('MatchAny').optional().describe('For compatibility with kube-apiserver; MatchAny is the only policy.'),
    certificateAuthority: z.string().optional().describe("CA bundle (PEM, inline) that verifies the issuer's TLS certificate."),
    certificateAuthorityFile: filePath.optional().describe('The same, read from a file. Set one of the two, not both.'),
  })
  .superRefine(
    (i, ctx) => {
      if (i.certificateAuthority !== undefined && i.certificateAuthorityFile !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['certificateAuthorityFile'], message: 'set certificateAuthority or certificateAuthorityFile, not both' });
      }
    },
    { when: validAt('certificateAuthority', 'certificateAuthorityFile') },
  );

const jwtAuthenticator = z.strictObject({
  issuer: jwtIssuer.describe('Who issues the tokens, and for whom.'),
  claimValidationRules: z
    .array(
      z.strictObject({
        claim: z.string().min(1).describe('Claim to check.'),
        requiredValue: z.string().describe('The claim must be a string equal to this.'),
      }),
    )
    .default([])
    .describe('Claims a token must carry with a given value. CEL expressions are not supported.'),
  claimMappings: z
    .strictObject({
      username: prefixed('username').describe('Where the user name comes from. When the claim is email and email_verified is present, it must be true.'),
      groups: prefixed('groups').optional().describe('Where the groups come from: a string or a list of strings.'),
      uid: z
        .strictObject({ claim: z.string().min(1).describe('Claim holding the uid; tokens without it are refused.') })
        .optional()
        .describe('Where the uid comes from.'),
    })
    .describe('How claims become the identity. CEL expressions are not supported: use claim and prefix.'),
  /**
   * A token with an unknown kid waits for the next allowed refetch rather than
   * failing, so a freshly rotated key is accepted at once while a flood of
   * bogus kids costs the identity provider at most one request per interval.
   */
  jwksRefetchInterval: duration.prefault('2s').describe("How often an unknown key id may make the proxy refetch the issuer's JWKS."),
});

const authentication = z
  .strictObject({
    allowImpersonationHeaders: z
      .boolean()
      .default(false)
      .describe("Forward clients' Impersonate-* headers (kube-apiserver then authorizes them against the caller). When false they are refused with 403."),
    jwt: z
      .array(jwtAuthenticator)
      .default([])
      .describe("JWT issuers, shaped like kube-apiserver's AuthenticationConfiguration jwt list; a token goes to the entry whose issuer.url equals its iss."),
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
      if (!a.session) return;
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
          message: `"${clientID}" is not among the audiences of the jwt entry for ${issuerURL}; add it there, id_tokens are issued for it`,
        });
      }
    },
    { when: validAt('jwt', 'session') },
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

export const configSchema = z.strictObject({
  listen,
  upstream,
  authentication,
  audit,
  log,
});

/** The configuration as written (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** The validated configuration, with defaults applied, durations in ms and paths absolute. */
export type Config = z.output<typeof configSchema>;
export type JwtAuthenticatorConfig = Config['authentication']['jwt'][number];
export type { SessionConfig } from './session-schema.js';
export type IdentityHeadersConfig = Config['upstream']['identityHeaders'];
