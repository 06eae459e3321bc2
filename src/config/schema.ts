/**
 * The configuration contract, defined once. It is the source of validation,
 * of defaults and of docs/configuration.md. Keys named in shared/DESIGN.md are
 * fixed; add freely, never rename. Every object is strict: an unknown key is an
 * error, so a typo never silently turns a security setting off.
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';

const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration: "${text}"; write it like 30s, 5m, 1h30m or 250ms` });
    return z.NEVER;
  }
  return ms;
});

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):\d{1,5}$/, {
  message: 'expected host:port, e.g. 127.0.0.1:8443 or [::]:8443 (":8443" for every address)',
});

/** A file path; relative paths are resolved against the config file's folder by load.ts. */
const filePath = z.string().min(1, 'must not be empty');

/** One header name, or several: the first is the one we set, all of them are stripped from clients. */
const headerNames = z
  .union([z.string(), z.array(z.string()).min(1)])
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .pipe(z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid HTTP header name')));

const tlsFiles = z.strictObject({ certFile: filePath, keyFile: filePath });

const listen = z.strictObject({
  address: hostPort.default('127.0.0.1:8443'),
  tls: tlsFiles,
  healthAddress: hostPort.default('127.0.0.1:8081'),
  /** Largest request head a client may send, in bytes (Node's --max-http-header-size). */
  maxHeaderBytes: z.number().int().min(1024).max(1_048_576).default(32_768),
  /** Time a client has to send the whole request head: the slowloris guard. */
  headerTimeout: duration.prefault('20s'),
  /** Time a client has to send a whole request body on a short (non-streaming) request. */
  bodyTimeout: duration.prefault('60s'),
  /** Idle time after which a kept-alive client connection is closed. */
  keepAliveTimeout: duration.prefault('65s'),
  /** On SIGTERM: how long short requests may finish before watches and tunnels are closed. */
  shutdownGracePeriod: duration.prefault('30s'),
});

const identityHeaders = z
  .strictObject({
    user: headerNames.default(['X-Remote-User']),
    group: headerNames.default(['X-Remote-Group']),
    extraPrefix: headerNames.default(['X-Remote-Extra-']),
    uid: headerNames.default(['X-Remote-Uid']),
  })
  .prefault({});

const upstream = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'expected an absolute http(s) URL, e.g. https://127.0.0.1:6443' }),
  caFile: filePath.optional(),
  clientCertFile: filePath.optional(),
  clientKeyFile: filePath.optional(),
  /** TLS server name to verify, when it differs from the URL's host. */
  serverName: z.string().optional(),
  identityHeaders,
  /** Time the upstream has to answer a short request with its response head. */
  responseTimeout: duration.prefault('60s'),
  /** Keep-alive connections to the upstream. */
  connections: z.number().int().min(1).max(4096).default(128),
});

const prefixed = (what: string) =>
  z.strictObject({
    claim: z.string().min(1, `the ${what} claim name must not be empty`),
    // kube-apiserver requires an explicit prefix when a claim is set; so do we,
    // so that one file means the same in both places.
    prefix: z.string({ error: `required; write prefix: "" to use the ${what} claim as is` }),
  });

const jwtIssuer = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: 'expected the issuer URL exactly as the tokens\' "iss" claim spells it' }),
    discoveryURL: z.url().optional(),
    audiences: z.array(z.string().min(1)).min(1, 'name at least one audience (the client ID tokens are issued for)'),
    audienceMatchPolicy: z.literal('MatchAny').optional(),
    certificateAuthority: z.string().optional(),
    certificateAuthorityFile: filePath.optional(),
  })
  .refine((i) => !(i.certificateAuthority && i.certificateAuthorityFile), {
    message: 'set certificateAuthority or certificateAuthorityFile, not both',
  });

const jwtAuthenticator = z.strictObject({
  issuer: jwtIssuer,
  claimValidationRules: z
    .array(z.strictObject({ claim: z.string().min(1), requiredValue: z.string() }))
    .default([]),
  claimMappings: z.strictObject({
    username: prefixed('username'),
    groups: prefixed('groups').optional(),
    uid: z.strictObject({ claim: z.string().min(1) }).optional(),
  }),
  /**
   * How often an unknown key id may make us refetch the issuer's JWKS. A token
   * with an unknown kid waits for the next allowed refetch rather than failing,
   * so a freshly rotated key is accepted at once while a flood of bogus kids
   * costs the identity provider at most one request per interval.
   */
  jwksRefetchInterval: duration.prefault('2s'),
});

const authentication = z
  .strictObject({
    allowImpersonationHeaders: z.boolean().default(false),
    jwt: z.array(jwtAuthenticator).default([]),
    /** How long a successful token verification is remembered (never past the token's exp). */
    tokenCacheTTL: duration.prefault('10s'),
    tokenCacheMaxEntries: z.number().int().min(0).default(10_000),
  })
  .prefault({})
  .refine((a) => new Set(a.jwt.map((j) => j.issuer.url)).size === a.jwt.length, {
    message: 'two jwt entries name the same issuer.url; tokens pick their issuer by "iss", so each must be unique',
    path: ['jwt'],
  });

const audit = z
  .strictObject({
    path: z.string().default('-'),
    format: z.enum(['combined', 'json']).default('combined'),
  })
  .prefault({});

const log = z
  .strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .prefault({});

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
export type IdentityHeadersConfig = Config['upstream']['identityHeaders'];
