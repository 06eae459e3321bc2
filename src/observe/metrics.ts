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

  return {
    registry,
    requestDone(ctx) {
      const labels = { code: String(ctx.status ?? 0), auth_method: ctx.identity?.authMethod ?? 'none', kind: ctx.kind };
      requests.inc(labels);
      duration.observe({ kind: ctx.kind }, elapsedSeconds(ctx));
    },
    authFailure: (reason) => authFailures.inc({ reason }),
    upstreamError: (code) => upstreamErrors.inc({ code }),
    longRunningOpened: (kind) => open.inc({ kind }),
    longRunningClosed: (kind) => open.dec({ kind }),
  };
}
