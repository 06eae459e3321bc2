/**
 * Prometheus metrics. One registry per proxy instance, so several proxies can
 * run in one process (tests) without sharing counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RequestContext } from '../request/context.js';
import { elapsedSeconds } from '../request/context.js';

export interface ProxyMetrics {
  readonly registry: Registry;
  requestDone(ctx: RequestContext): void;
  authFailure(reason: string): void;
  upstreamError(code: string): void;
  /** Open watches, follows and tunnels, by kind. */
  longRunningOpened(kind: string): void;
  longRunningClosed(kind: string): void;
  /** A look at authentication.configFile that found it changed: applied (success) or not (failure). */
  authenticationConfigReloaded(status: 'success' | 'failure'): void;
  /** The configuration file now in use, by its `sha256:…` hash (at start and after each successful reload). */
  authenticationConfigApplied(hash: string): void;
}

export function createMetrics(): ProxyMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'kfp_' });
  const requests = new Counter({
    name: 'kfp_requests_total',
    help: 'Requests handled, by response code, authentication method and request kind.',
    labelNames: ['code', 'auth_method', 'kind'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'kfp_request_duration_seconds',
    help: 'Time from request start to the end of the response, by request kind.',
    labelNames: ['kind'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const authFailures = new Counter({
    name: 'kfp_authentication_failures_total',
    help: 'Requests refused by authentication, by reason.',
    labelNames: ['reason'],
    registers: [registry],
  });
  const upstreamErrors = new Counter({
    name: 'kfp_upstream_errors_total',
    help: 'Failures reaching the upstream, by error code.',
    labelNames: ['code'],
    registers: [registry],
  });
  const open = new Gauge({
    name: 'kfp_long_running_requests',
    help: 'Long-running requests open now (watch, follow, proxy, upgrade).',
    labelNames: ['kind'],
    registers: [registry],
  });

  // kube-apiserver's apiserver_authentication_config_controller_* (k8s.io/apiserver@v0.37.2
  // pkg/server/options/authenticationconfig/metrics/metrics.go), without its apiserver_id_hash label.
  const reloads = new Counter({
    name: 'kfp_authentication_config_controller_automatic_reloads_total',
    help: 'Total number of automatic reloads of authentication configuration split by status.',
    labelNames: ['status'],
    registers: [registry],
  });
  const lastReload = new Gauge({
    name: 'kfp_authentication_config_controller_automatic_reload_last_timestamp_seconds',
    help: 'Timestamp of the last automatic reload of authentication configuration split by status.',
    labelNames: ['status'],
    registers: [registry],
  });
  const configInfo = new Gauge({
    name: 'kfp_authentication_config_controller_last_config_info',
    help: 'Information about the last applied authentication configuration with hash as label.',
    labelNames: ['hash'],
    registers: [registry],
  });

  return {
    registry,
    requestDone(ctx) {
      const labels = { code: String(ctx.status ?? 0), auth_method: ctx.authMethod ?? 'none', kind: ctx.kind };
      requests.inc(labels);
      duration.observe({ kind: ctx.kind }, elapsedSeconds(ctx));
    },
    authFailure: (reason) => authFailures.inc({ reason }),
    upstreamError: (code) => upstreamErrors.inc({ code }),
    longRunningOpened: (kind) => open.inc({ kind }),
    longRunningClosed: (kind) => open.dec({ kind }),
    authenticationConfigReloaded(status) {
      reloads.inc({ status });
      lastReload.set({ status }, Date.now() / 1000);
    },
    authenticationConfigApplied(hash) {
      // One series: the hash in use now (kube's config-info collector reports only the current one).
      configInfo.reset();
      configInfo.set({ hash }, 1);
    },
  };
}
