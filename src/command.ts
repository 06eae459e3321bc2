/**
 * The command line: arguments → config → start. The help text is the flag reference.
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, formatConfigError } from './config/errors.js';
import { loadConfig } from './config/load.js';
import { readContainerLimits } from './observe/cgroup.js';
import { createLogger } from './observe/logger.js';
// Types only: the proxy is loaded where it runs, so the primary of several workers never carries it.
import type { RunningProxy, StartOptions } from './server.js';
import { logWorkerPlan, planWorkers, runPrimary, serveWorkerQueries, workerSettings } from './workers.js';

const HELP = `kube-front-proxy: an authenticating front proxy for kube-apiserver.

Usage:
  kube-front-proxy --config FILE            run the proxy
  kube-front-proxy --config FILE --check-config
                                            validate FILE, print every problem, exit 0 or 1
  kube-front-proxy quickstart               run a local stack: dev PKI in certs/dev, a dev
                                            OIDC issuer, a dev upstream and the proxy

Options:
  -c, --config FILE    YAML configuration (reference: docs/configuration.md);
                       relative paths in it are relative to its folder
      --check-config   only validate the configuration
      --log-level LVL  override log.level (fatal, error, warn, info, debug, trace, silent)
  -h, --help           this text
  -v, --version        the version

Environment:
  none yet; secrets are read from the files the configuration names.

Signals: SIGTERM and SIGINT stop accepting connections, let short requests finish
within listen.shutdownGracePeriod, then close watches and tunnels.`;

/** What a caller may inject instead of the real parts (the benchmark's no-auth build does). */
export type ProxyParts = Pick<StartOptions, 'authenticate' | 'upstream'>;

/** Runs the command; resolves with the exit code. */
export async function runCommand(argv: string[], parts: ProxyParts = {}): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'check-config': { type: 'boolean' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.help) return print(HELP, 0);
  if (values.version) return print(version(), 0);
  if (positionals[0] === 'quickstart') return runQuickstart();
  if (positionals.length) return print(`unknown command "${positionals[0]}"\n\n${HELP}`, 2);
  if (!values.config) return print(`--config FILE is required (or run "npm start" for the quick start)\n\n${HELP}`, 2);

  let config;
  try {
    config = await loadConfig(values.config);
  } catch (err) {
    if (err instanceof ConfigError) return print(formatConfigError(err, values.config), 1);
    throw err;
  }
  if (values['check-config']) return print(`${values.config}: configuration is valid`, 0);

  const logger = createLogger(values['log-level'] ?? config.log.level);
  if (cluster.isPrimary) {
    const plan = planWorkers(workerSettings(config), readContainerLimits());
    logWorkerPlan(plan, logger);
    if (plan.count > 1) {
      await runPrimary(config, plan.count, logger);
      return 0;
    }
  }
  const { startProxy } = await import('./server.js');
  const proxy = await startProxy(config, logger, { ...parts, healthServer: !cluster.isWorker });
  if (cluster.isWorker) serveWorkerQueries(proxy);
  await stopOnSignal(proxy);
  // The IPC channel to the primary would keep a drained worker alive.
  if (cluster.isWorker) process.disconnect();
  return 0;
}

/**
 * The quick start lives in dev/, outside what the package and the image ship
 * (dist/ is built from src/ alone). `npm start` builds both into dist-dev/, where
 * this file finds it beside itself; a production build answers with how to get it.
 */
async function runQuickstart(): Promise<number> {
  const devEntry = '../dev/quickstart.js'; // a variable: the compiler must not pull dev/ into the build
  const quickstart = (await import(devEntry).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    return undefined;
  })) as { runQuickstart(): Promise<number> } | undefined;
  if (!quickstart) return print('the quick start is not part of this build: run "npm start" from a clone after "npm ci"', 1);
  return quickstart.runQuickstart();
}

function stopOnSignal(proxy: RunningProxy): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => void proxy.close().then(resolve);
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function print(text: string, code: number): number {
  (code === 0 ? process.stdout : process.stderr).write(`${text}\n`);
  return code;
}
