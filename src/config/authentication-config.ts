/**
 * kube-apiserver's AuthenticationConfiguration file (what --authentication-config
 * reads), read as kube reads it, so that one file drives both: YAML or JSON,
 * apiserver.config.k8s.io v1, v1beta1 or v1alpha1, strict (an unknown or
 * repeated key is an error, as kube's decoder is built with EnableStrict), every
 * `jwt[]` entry checked by the same schema as `authentication.jwt[]`, and kube's
 * rules over the whole list (k8s.io/apiserver@v0.37.2
 * pkg/apis/apiserver/validation/validation.go, ValidateAuthenticationConfiguration;
 * k8s.io/kubernetes@v1.37.2 pkg/kubeapiserver/options/authentication.go,
 * loadAuthenticationConfigFromData).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError, formatPath, type ConfigProblem } from './errors.js';
import { jwtAuthenticator } from './jwt-schema.js';
import { friendlyErrorMap, unknownKeyMessage } from './problems.js';
import { patternOf } from './keys.js';
import type { JwtAuthenticatorConfig, SessionConfig } from './schema.js';

const GROUP = 'apiserver.config.k8s.io';
/** The versions kube-apiserver 1.37 registers AuthenticationConfiguration in (pkg/apis/apiserver/*\/register.go). */
const VERSIONS = ['v1', 'v1beta1', 'v1alpha1'].map((v) => `${GROUP}/${v}`);
const KIND = 'AuthenticationConfiguration';
/** validation.go: `field.TooMany(root, len(c.JWT), 64)`. */
const MAX_JWT = 64;

/**
 * Keys `authentication.jwt[]` takes that kube-apiserver does not know: in the
 * file kube's strict decoder would refuse them, so the proxy does too.
 */
const PROXY_ONLY_KEYS: ReadonlyArray<readonly [string, string]> = [
  ['issuer', 'certificateAuthorityFile'],
  ['', 'jwksRefetchInterval'],
];

const anonymous = z.strictObject({
  enabled: z.boolean(),
  conditions: z.array(z.strictObject({ path: z.string() })).default([]),
});

const fileSchema = z.strictObject({
  apiVersion: z.string(),
  kind: z.string(),
  jwt: z.array(jwtAuthenticator).max(MAX_JWT, `must have at most ${MAX_JWT} items (kube-apiserver's limit)`).default([]),
  anonymous: anonymous.optional(),
});

/** `anonymous` as written in the file. */
export type AnonymousConfig = z.output<typeof anonymous>;

/** A file that kube-apiserver and the proxy both accept. */
export interface AuthenticationConfiguration {
  readonly jwt: readonly JwtAuthenticatorConfig[];
  /** As written (only `enabled: false` is accepted); kube refuses a reload that changes it. */
  readonly anonymous: AnonymousConfig | undefined;
  /** The file's bytes as text: a reload compares them, the config-info metric hashes them. */
  readonly data: string;
  /** `sha256:<hex>` of `data`, as kube's apiserver_authentication_config_controller_last_config_info labels it. */
  readonly hash: string;
}

/** Problems found in the file, each pathed inside it (`jwt[0].claimMappings.username`, "" for the whole file). */
export class AuthenticationConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: readonly ConfigProblem[]) {
    super(`${file}: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`);
    this.name = 'AuthenticationConfigError';
    this.problems = problems;
  }
}

/** `sha256:<hex>`, kube's getHash (authenticationconfig/metrics/metrics.go). */
export function configHash(data: string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * Parses and validates the text of an AuthenticationConfiguration file.
 *
 * @throws {AuthenticationConfigError} with every problem found.
 */
export function parseAuthenticationConfig(data: string, file: string): AuthenticationConfiguration {
  const fail = (problems: ConfigProblem[]): never => {
    throw new AuthenticationConfigError(file, problems);
  };
  // loadAuthenticationConfigFromData: `empty config data`.
  if (data.trim() === '') fail([{ path: '', message: 'the file is empty (kube-apiserver: "empty config data"); write apiVersion: apiserver.config.k8s.io/v1, kind: AuthenticationConfiguration and a jwt list' }]);
  let input: unknown;
  try {
    input = parseYamlOrJson(data);
  } catch (err) {
    fail(err instanceof ConfigError ? [...err.problems] : [{ path: '', message: String(err) }]);
  }
  const wrongType = typeProblems(input);
  if (wrongType.length > 0) fail(wrongType);
  const raw = input as Record<string, unknown>;

  const problems: ConfigProblem[] = [...proxyOnlyKeyProblems(raw.jwt)];
  const result = fileSchema.safeParse(input, { error: friendlyErrorMap });
  if (!result.success) problems.push(...issueProblems(result.error.issues));
  else problems.push(...listProblems(result.data.jwt), ...anonymousProblems(result.data.anonymous));
  if (!result.success || problems.length > 0) return fail(problems);
  return { jwt: result.data.jwt, anonymous: result.data.anonymous, data, hash: configHash(data) };
}

/** Reads and validates the file (synchronously, for configuration loading). */
export function readAuthenticationConfigSync(file: string): AuthenticationConfiguration {
  return parseAuthenticationConfig(readText(() => readFileSync(file, 'utf8'), file), file);
}

/** Reads the file's text; a read failure is an AuthenticationConfigError. */
export async function readAuthenticationConfigText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new AuthenticationConfigError(file, [{ path: '', message: `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
}

function readText(read: () => string, file: string): string {
  try {
    return read();
  } catch (err) {
    throw new AuthenticationConfigError(file, [{ path: '', message: `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
}

/**
 * The browser session's id_token is mapped by the jwt entry of its issuer, which
 * must accept the session's client ID (schema.ts checks the same for
 * authentication.jwt; with a file it is checked whenever the file is read).
 */
export function sessionPairingProblems(jwt: readonly JwtAuthenticatorConfig[], session: SessionConfig | undefined): string[] {
  if (!session) return [];
  const { issuerURL, clientID } = session.oidc;
  const entry = jwt.find((j) => j.issuer.url === issuerURL);
  if (!entry) return [`no jwt entry has issuer.url ${issuerURL}, the issuer of authentication.session.oidc; add one: it maps the session's id_token to the identity`];
  if (!entry.issuer.audiences.includes(clientID)) {
    return [`the jwt entry for ${issuerURL} does not list "${clientID}" (authentication.session.oidc.clientID) in issuer.audiences; add it there (with audienceMatchPolicy: MatchAny when there are two), id_tokens are issued for it`];
  }
  return [];
}

/**
 * YAML or JSON (JSON is YAML), as kube's decoder reads both. A repeated key is
 * an error, as kube's strict decoder has it; aliases are bounded.
 */
function parseYamlOrJson(data: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(data, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((err) => {
        const { line, col } = lineCounter.linePos(err.pos[0]);
        return { path: '', message: `not valid YAML or JSON at line ${line}, column ${col}: ${err.message}` };
      }),
    );
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError([{ path: '', message: `not usable YAML: ${(err as Error).message}` }]);
  }
}

/** apiVersion and kind before anything else: another kind of file gets one message that names the fix. */
function typeProblems(input: unknown): ConfigProblem[] {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return [{ path: '', message: `expected a mapping with apiVersion: ${VERSIONS[0]} and kind: ${KIND} at the top` }];
  }
  const { apiVersion, kind } = input as Record<string, unknown>;
  if ('listen' in input || 'upstream' in input || 'authentication' in input) {
    return [{ path: '', message: `this is a kube-front-proxy configuration; authentication.configFile must name kube-apiserver's AuthenticationConfiguration file (what --authentication-config reads)` }];
  }
  const problems: ConfigProblem[] = [];
  if (apiVersion === undefined) problems.push({ path: 'apiVersion', message: `required (kube-apiserver: "Object 'apiVersion' is missing"); write apiVersion: ${VERSIONS[0]}` });
  else if (typeof apiVersion !== 'string' || !VERSIONS.includes(apiVersion)) {
    problems.push({ path: 'apiVersion', message: `must be one of ${VERSIONS.join(', ')}; got ${JSON.stringify(apiVersion)}. Write apiVersion: ${VERSIONS[0]}` });
  }
  if (kind === undefined) problems.push({ path: 'kind', message: `required (kube-apiserver: "Object 'Kind' is missing"); write kind: ${KIND}` });
  else if (kind !== KIND) {
    problems.push({ path: 'kind', message: `must be ${KIND}; got ${JSON.stringify(kind)}. The file must be what kube-apiserver's --authentication-config reads` });
  }
  return problems;
}

/** Keys only authentication.jwt[] takes: kube's strict decoding refuses them in the file. */
function proxyOnlyKeyProblems(jwt: unknown): ConfigProblem[] {
  if (!Array.isArray(jwt)) return [];
  const problems: ConfigProblem[] = [];
  jwt.forEach((entry: unknown, index) => {
    for (const [parent, key] of PROXY_ONLY_KEYS) {
      const holder = parent ? (entry as Record<string, unknown> | undefined)?.[parent] : entry;
      if (typeof holder === 'object' && holder !== null && key in holder) {
        const path = formatPath(['jwt', index, ...(parent ? [parent] : []), key]);
        problems.push({
          path,
          message: `unknown key; kube-apiserver refuses it (strict decoding error: unknown field "${path}"): it is kube-front-proxy's own, for authentication.jwt only${key === 'certificateAuthorityFile' ? '; write the PEM inline as certificateAuthority' : ''}`,
        });
      }
    }
  });
  return problems;
}

function issueProblems(issues: readonly z.core.$ZodIssue[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        if (PROXY_ONLY_KEYS.some(([, k]) => k === key)) continue; // reported by proxyOnlyKeyProblems
        problems.push({ path: formatPath(path), message: `${unknownKey(issue.path, key)} (kube-apiserver: strict decoding error: unknown field "${formatPath(path)}")` });
      }
    } else {
      problems.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  return problems;
}

/** Inside jwt[] the suggestions of authentication.jwt[] apply; elsewhere the file's own keys. */
function unknownKey(parentPath: readonly PropertyKey[], key: string): string {
  if (parentPath[0] === 'jwt' && parentPath.length > 1) return unknownKeyMessage(`authentication.${patternOf(parentPath)}`, key);
  if (parentPath.length === 0) return `unknown key; expected one of: apiVersion, kind, jwt, anonymous`;
  if (parentPath[0] === 'anonymous') return parentPath.length === 1 ? 'unknown key; expected one of: enabled, conditions' : 'unknown key; expected: path';
  return 'unknown key';
}

/** validation.go ValidateAuthenticationConfiguration: issuer URLs and discovery URLs unique across the list. */
function listProblems(jwt: readonly JwtAuthenticatorConfig[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const issuers = new Map<string, number>();
  const discovery = new Map<string, number>();
  jwt.forEach((entry, index) => {
    const earlier = issuers.get(entry.issuer.url);
    if (earlier !== undefined) {
      problems.push({ path: `jwt[${index}].issuer.url`, message: `Duplicate value: ${JSON.stringify(entry.issuer.url)} (the same as jwt[${earlier}]); tokens pick their entry by "iss", so each must be unique` });
    } else issuers.set(entry.issuer.url, index);
    const { discoveryURL } = entry.issuer;
    if (discoveryURL) {
      const before = discovery.get(discoveryURL);
      if (before !== undefined) problems.push({ path: `jwt[${index}].issuer.discoveryURL`, message: `Duplicate value: ${JSON.stringify(discoveryURL)} (the same as jwt[${before}])` });
      else discovery.set(discoveryURL, index);
    }
  });
  return problems;
}

/**
 * kube answers requests without credentials as system:anonymous when
 * anonymous.enabled is true. The proxy has no anonymous identity to forward, so
 * it takes only what it does itself: anonymous requests refused (401).
 */
function anonymousProblems(config: AnonymousConfig | undefined): ConfigProblem[] {
  if (!config) return [];
  if (!config.enabled && config.conditions.length > 0) {
    return [{ path: 'anonymous.conditions', message: 'Invalid value: enabled should be set to true when conditions are defined (kube-apiserver refuses this too)' }];
  }
  if (config.enabled) {
    return [
      {
        path: 'anonymous.enabled',
        message:
          'kube-front-proxy does not forward anonymous requests: a request without credentials gets 401, as kube-apiserver with anonymous.enabled: false. Set enabled: false (or remove anonymous) in the file the proxy reads; probes of /healthz, /livez, /readyz can go to kube-apiserver directly',
      },
    ];
  }
  return [];
}

/** Why a reload is refused although the new file is valid on its own (kube: anonymous may not change after start). */
export function reloadProblems(initial: AuthenticationConfiguration, next: AuthenticationConfiguration): ConfigProblem[] {
  if (JSON.stringify(initial.anonymous) !== JSON.stringify(next.anonymous)) {
    return [{ path: 'anonymous', message: 'Forbidden: changed from initial configuration file (kube-apiserver refuses this on reload too; restart to change it)' }];
  }
  return [];
}
