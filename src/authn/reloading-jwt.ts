/**
 * The JWT authenticator over authentication.configFile, reloaded when the file
 * changes, as kube-apiserver reloads --authentication-config since 1.30
 * (k8s.io/kubernetes@v1.37.2 pkg/kubeapiserver/options/authentication.go,
 * ApplyTo's WatchUntil callback; pkg/kubeapiserver/authenticator/config.go,
 * updateAuthenticationConfig):
 *
 * - the file is polled (stat follows the `..data` symlink a ConfigMap volume
 *   swaps) and its text compared with the last one handled: same text, nothing;
 * - a file that cannot be read counts a failure and is retried at the next poll;
 * - a file that does not parse or validate counts a failure once and keeps the
 *   last good configuration (its text is remembered, so it is not retried until
 *   it changes); so does one that changes `anonymous` (kube forbids it);
 * - a valid file builds a new authenticator, which must become ready (discovery
 *   and keys loaded) within `readyTimeoutMs`, else it is a failure, retried;
 * - then it is swapped in at once: requests already in the old one finish
 *   there, and the old one is closed when the last of them is done.
 *
 * Each authenticator has its own token cache, so no identity the old file
 * mapped is answered after the swap.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AuthenticationConfigError,
  parseAuthenticationConfig,
  readAuthenticationConfigSync,
  readAuthenticationConfigText,
  reloadProblems,
  sessionPairingProblems,
  type AuthenticationConfiguration,
} from '../config/authentication-config.js';
import type { ConfigProblem } from '../config/errors.js';
import type { JwtAuthenticatorConfig, SessionConfig } from '../config/schema.js';
import type { ProxyMetrics } from '../observe/metrics.js';
import type { AuthOutcome } from '../request/identity.js';
import type { TokenAuthenticator } from './authenticator.js';
import { createJwtAuthenticator, type JwtAuthenticatorOptions } from './jwt/index.js';

/** How often the file is looked at. kube-apiserver: fsnotify, and a full look every minute. */
export const RELOAD_INTERVAL_MS = 5_000;
/** How long a new configuration's issuers have to load (kube: UpdateAuthenticationConfigTimeout, one minute). */
export const READY_TIMEOUT_MS = 60_000;

export type ReloadMetrics = Pick<ProxyMetrics, 'authenticationConfigReloaded' | 'authenticationConfigApplied'>;

export interface ReloadingJwtOptions extends JwtAuthenticatorOptions {
  /** authentication.configFile (absolute). */
  readonly file: string;
  readonly metrics: ReloadMetrics;
  /** A new file must still pair with the browser session (authentication.session), if any. */
  readonly session?: SessionConfig;
  readonly intervalMs?: number;
  readonly readyTimeoutMs?: number;
  /** Builds one authenticator for one file; tests replace it. */
  readonly build?: (configs: readonly JwtAuthenticatorConfig[], opts: JwtAuthenticatorOptions) => TokenAuthenticator;
}

/** What one look at the file did. */
export type ReloadResult = 'unchanged' | 'reloaded' | 'failed';

export interface ReloadingJwtAuthenticator extends TokenAuthenticator {
  /** Looks at the file now (the poll calls it; tests call it to not wait). */
  reload(): Promise<ReloadResult>;
  /** `sha256:…` of the file now in use. */
  configHash(): string;
}

/** One authenticator and the requests it is answering. */
interface Generation {
  readonly authenticator: TokenAuthenticator;
  readonly config: AuthenticationConfiguration;
  inflight: number;
  retired: boolean;
  closing?: Promise<void>;
}

/**
 * Reads the file (synchronously: loadConfig has validated it already, this is
 * the copy whose text later reads are compared with), builds its
 * authenticator, and starts polling.
 *
 * @throws {AuthenticationConfigError} when the file cannot be used at all.
 * @example
 * const jwt = createReloadingJwtAuthenticator({ file: config.authentication.configFile, session: config.authentication.session,
 *   metrics, logger, cacheTTLms: config.authentication.tokenCacheTTL, cacheMaxEntries: config.authentication.tokenCacheMaxEntries });
 */
export function createReloadingJwtAuthenticator(opts: ReloadingJwtOptions): ReloadingJwtAuthenticator {
  const { file, metrics, logger } = opts;
  const log = logger.child({ component: 'authentication-config', file });
  const build = opts.build ?? createJwtAuthenticator;
  const jwtOptions: JwtAuthenticatorOptions = { logger, cacheTTLms: opts.cacheTTLms, cacheMaxEntries: opts.cacheMaxEntries };

  const initial = readAuthenticationConfigSync(file);
  const pairing = sessionPairingProblems(initial.jwt, opts.session);
  if (pairing.length > 0) throw new AuthenticationConfigError(file, pairing.map((message) => ({ path: '', message })));
  const generation = (config: AuthenticationConfiguration): Generation => ({ authenticator: build(config.jwt, jwtOptions), config, inflight: 0, retired: false });
  let current = generation(initial);
  metrics.authenticationConfigApplied(initial.hash);
  /** The text last handled, good or bad: kube's trackedAuthenticationConfigData. */
  let tracked = initial.data;
  let stopped = false;

  const closeGeneration = (g: Generation): Promise<void> =>
    (g.closing ??= g.authenticator.close().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'closing a replaced authenticator failed')));

  const failed = (problems: readonly ConfigProblem[], what: string): ReloadResult => {
    metrics.authenticationConfigReloaded('failure');
    // The problems name keys and expressions of the file, never a token.
    log.error({ problems: problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)) }, `${what}; keeping the last good configuration`);
    return 'failed';
  };

  const untilReady = async (candidate: TokenAuthenticator): Promise<boolean> => {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? READY_TIMEOUT_MS);
    while (!candidate.ready()) {
      if (stopped || Date.now() > deadline) return false;
      await sleep(50);
    }
    return true;
  };

  const look = async (): Promise<ReloadResult> => {
    let data: string;
    try {
      data = await readAuthenticationConfigText(file);
    } catch (err) {
      // Not tracked: a file being replaced may be readable at the next look.
      return failed((err as AuthenticationConfigError).problems, 'authentication config file cannot be read');
    }
    if (data === tracked) return 'unchanged';
    let next: AuthenticationConfiguration;
    try {
      next = parseAuthenticationConfig(data, file);
    } catch (err) {
      if (!(err instanceof AuthenticationConfigError)) throw err;
      tracked = data; // never valid until it changes: not retried
      return failed(err.problems, 'authentication config file changed but is not valid');
    }
    const refused = [...reloadProblems(current.config, next), ...sessionPairingProblems(next.jwt, opts.session).map((message) => ({ path: '', message }))];
    if (refused.length > 0) {
      tracked = data;
      return failed(refused, 'authentication config file changed but cannot be used');
    }
    const candidate = generation(next);
    if (!(await untilReady(candidate.authenticator)) || stopped) {
      await closeGeneration(candidate);
      if (stopped) return 'unchanged';
      // Not tracked: the issuer may be reachable at the next look.
      return failed([{ path: '', message: 'the new configuration\'s issuers did not load (discovery or keys) in time' }], 'authentication config file changed but its issuers are not ready');
    }
    const old = current;
    current = candidate;
    tracked = data;
    old.retired = true;
    if (old.inflight === 0) void closeGeneration(old);
    metrics.authenticationConfigReloaded('success');
    metrics.authenticationConfigApplied(next.hash);
    log.info({ hash: next.hash, issuers: next.jwt.map((j) => j.issuer.url) }, 'reloaded authentication config');
    return 'reloaded';
  };

  // One look at a time; a poll that comes while one runs is skipped.
  let running: Promise<ReloadResult> | undefined;
  const reload = (): Promise<ReloadResult> => {
    running ??= look().finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => {
    reload().catch((err: unknown) => log.error({ err: (err as Error).message }, 'authentication config reload failed unexpectedly'));
  }, opts.intervalMs ?? RELOAD_INTERVAL_MS);
  timer.unref();

  return {
    async authenticateToken(token: string): Promise<AuthOutcome> {
      const g = current;
      g.inflight++;
      try {
        return await g.authenticator.authenticateToken(token);
      } finally {
        g.inflight--;
        if (g.retired && g.inflight === 0) void closeGeneration(g);
      }
    },
    ready: () => current.authenticator.ready(),
    reload,
    configHash: () => current.config.hash,
    async close() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
      await closeGeneration(current);
    },
  };
}
