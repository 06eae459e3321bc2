/**
 * Several worker processes sharing one listener (node:cluster), so the proxy
 * uses every core. The primary only supervises: it forks the workers, restarts
 * one that dies, serves /healthz, /readyz and /metrics for all of them (metrics
 * summed by prom-client's AggregatorRegistry, readiness asked of each worker),
 * and passes SIGTERM on so every worker drains.
 */
import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry } from 'prom-client';
import type { Config } from './config/schema.js';
import type { ContainerLimits } from './observe/cgroup.js';
import { createHealthServer } from './observe/health.js';
import type { Logger } from './observe/logger.js';
import { listenOn } from './listen-on.js';
// Type only: the primary never loads the proxy itself.
import type { RunningProxy } from './server.js';

const READY_QUESTION = 'kfp:not-ready?';
const READY_ANSWER = 'kfp:not-ready';
const ASK_TIMEOUT_MS = 1_000;

const MiB = 1024 * 1024;

/**
 * Idle RSS per process, measured for the default kubectl-only config (one JWT
 * issuer, requestheader upstream, audit to a file) on Node 20.20, x86_64: the
 * proxy run with listen.workers 2, VmRSS read from /proc/<pid>/status 5 s after
 * /readyz first answered 200, four runs. Primary 70.6–71.4 MiB, workers
 * 85.3–96.0 MiB (15 s later V8 has given some back: 62 and 70–85). Taken at the
 * high end: at start every process is at its 5 s figure together.
 */
export const PRIMARY_BASELINE_BYTES = 72 * MiB;
export const WORKER_BASELINE_BYTES = 96 * MiB;
/** What the idle processes may take of the memory limit: the rest is for watches and bursts (docs/operations.md, "Sizing"). */
export const IDLE_SHARE_OF_MEMORY = 0.75;

/** What decided the worker count, in the words of the startup log. */
export type WorkerSource = 'config' | 'memory sessions' | 'cgroup cpu quota' | 'memory limit' | 'cores';

/** What the count depends on in the configuration. */
export interface WorkerSettings {
  /** listen.workers, when the admin set it. */
  readonly workers?: number;
  /** Browser sessions in one process's memory: other workers would not see them. */
  readonly memorySessions: boolean;
}

export const workerSettings = (config: Config): WorkerSettings => ({
  ...(config.listen.workers !== undefined && { workers: config.listen.workers }),
  memorySessions: config.authentication.session?.store.type === 'memory',
});

export interface WorkerPlan {
  readonly count: number;
  readonly source: WorkerSource;
  /** The numbers it was decided from, for the startup log. */
  readonly facts: Readonly<Record<string, number | string>>;
  /** What the admin should know: a limit that could not be read, sessions split between workers. */
  readonly warnings: readonly string[];
}

/**
 * How many workers to run. listen.workers when the admin set it; one when
 * sessions live in one process's memory; else the container's CPU quota rounded
 * up (at most the cores we may run on), cut to what three quarters of the
 * memory limit hold beside the primary at the baselines above, so that idle
 * processes alone never fill it. Never fewer than one.
 */
export function planWorkers(settings: WorkerSettings, limits: ContainerLimits, cores = availableParallelism()): WorkerPlan {
  if (settings.workers !== undefined) {
    const split = settings.memorySessions && settings.workers > 1;
    return { count: settings.workers, source: 'config', facts: {}, warnings: split ? [SPLIT_SESSIONS] : [] };
  }
  if (settings.memorySessions) return { count: 1, source: 'memory sessions', facts: {}, warnings: [] };
  const facts: Record<string, number | string> = { cores };
  // A limit that cannot be read is left out: the cores decide (fail safe: the proxy starts, and the log says why).
  const warnings = limits.problems.map((problem) => `container limit ignored: ${problem}`);
  let count = cores;
  let source: WorkerSource = 'cores';
  if (limits.cpus !== undefined) {
    facts.cpuQuota = Math.round(limits.cpus * 1000) / 1000;
    const byQuota = Math.max(1, Math.ceil(limits.cpus));
    if (byQuota < count) [count, source] = [byQuota, 'cgroup cpu quota'];
  }
  if (limits.memoryBytes !== undefined) {
    facts.memoryLimitMiB = Math.floor(limits.memoryBytes / MiB);
    facts.baselineMiB = `primary ${PRIMARY_BASELINE_BYTES / MiB}, worker ${WORKER_BASELINE_BYTES / MiB}`;
    // The primary is counted even where one worker would run alone without it: wrong only on the safe side.
    const fits = Math.max(1, Math.floor((IDLE_SHARE_OF_MEMORY * limits.memoryBytes - PRIMARY_BASELINE_BYTES) / WORKER_BASELINE_BYTES));
    if (fits < count) [count, source] = [fits, 'memory limit'];
  }
  return { count, source, facts, warnings };
}

const SPLIT_SESSIONS = 'listen.workers > 1 with the memory session store: each worker keeps its own sessions (use store.type redis)';

/** The startup line that says how many workers and why. */
export function logWorkerPlan(plan: WorkerPlan, logger: Logger): void {
  const line = { workers: plan.count, source: plan.source, ...plan.facts, ...(plan.warnings.length && { warnings: plan.warnings }) };
  if (plan.warnings.length) logger.warn(line, 'worker count');
  else logger.info(line, 'worker count');
}

/** In a worker: answer the primary's readiness questions and expose our metrics to its aggregator. */
export function serveWorkerQueries(proxy: RunningProxy): void {
  AggregatorRegistry.setRegistries([proxy.metrics.registry]);
  // prom-client installs a worker's answering listener only when an aggregator is constructed.
  new AggregatorRegistry();
  process.on('message', (message: { type?: string; id?: number }) => {
    if (message?.type === READY_QUESTION) process.send?.({ type: READY_ANSWER, id: message.id, notReady: proxy.notReady() });
  });
}

/** In the primary: fork, supervise, serve health, and stop on a signal. Resolves when every worker has exited. */
export async function runPrimary(config: Config, count: number, logger: Logger): Promise<void> {
  let stopping = false;
  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      logger.error({ pid: worker.process.pid, code, signal }, 'worker died; starting another');
      fork();
    });
    return worker;
  };
  for (let i = 0; i < count; i++) fork();

  let question = 0;
  const ask = (worker: Worker) =>
    new Promise<string[]>((resolve) => {
      const id = ++question;
      const timer = setTimeout(() => done([`worker ${worker.process.pid} did not answer`]), ASK_TIMEOUT_MS);
      const onMessage = (m: { type?: string; id?: number; notReady?: string[] }) => {
        if (m?.type === READY_ANSWER && m.id === id) done(m.notReady ?? []);
      };
      const done = (notReady: string[]) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        resolve(notReady);
      };
      worker.on('message', onMessage);
      worker.send({ type: READY_QUESTION, id });
    });

  // Readiness is cached between probes: the health server's interface is synchronous.
  let notReady: string[] = ['workers starting'];
  const refresh = async () => {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w.isConnected());
    const answers = await Promise.all(workers.map(ask));
    notReady = workers.length < count ? ['workers starting'] : [...new Set(answers.flat())];
  };
  const poll = setInterval(() => void refresh(), 500);

  const aggregator = new AggregatorRegistry();
  const health = createHealthServer({ notReady: () => notReady }, { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType });
  const healthURL = `http://${await listenOn(health, config.listen.healthAddress)}`;
  logger.info({ workers: count, healthURL }, 'kube-front-proxy primary supervising workers');

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  stopping = true;
  clearInterval(poll);
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
  await Promise.all(
    workers.map(async (w) => {
      const exited = once(w, 'exit');
      w.process.kill('SIGTERM');
      await exited;
    }),
  );
  await new Promise((resolve) => health.close(resolve));
}
