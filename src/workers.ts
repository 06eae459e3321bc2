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
import { createHealthServer } from './observe/health.js';
import type { Logger } from './observe/logger.js';
import { listenOn, type RunningProxy } from './server.js';

const READY_QUESTION = 'kfp:not-ready?';
const READY_ANSWER = 'kfp:not-ready';
const ASK_TIMEOUT_MS = 1_000;

/** How many workers to run: listen.workers, else one per core, but one for memory-held sessions. */
export function workerCount(config: Config): number {
  if (config.listen.workers) return config.listen.workers;
  return config.authentication.session?.store.type === 'memory' ? 1 : availableParallelism();
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
