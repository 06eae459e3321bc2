/**
 * What every scenario module exports, and what it is given: the running
 * upstream and load generator, the servers, and where its problems go.
 */
import type { DevIssuer } from '../dev/issuer.js';
import type { IpcChild } from './children.js';
import type { Target } from './loadgen/jobs.js';
import type { BenchOptions } from './options.js';
import type { BenchResults, Figure } from './results.js';
import type { ServerPool, SharedServer } from './servers/pool.js';
import type { Server, ServerEnv } from './servers/server.js';

export interface Scenario {
  /** The number `--scenarios` selects it by; 'profile' is the extra --cpu-prof window, on unless `--no-profile`. */
  readonly id: number | 'profile';
  /** The shared servers it uses, started together before the first scenario runs. */
  needs(options: BenchOptions): readonly SharedServer[];
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

export interface ScenarioResult {
  readonly figures: readonly Figure[];
  /** Latency percentile curves for the plot. */
  readonly curves?: Partial<BenchResults['curves']>;
  /** Lines for the notes of RESULTS.md. */
  readonly notes?: readonly string[];
  readonly profile?: BenchResults['profile'];
}

export interface ScenarioContext {
  readonly options: BenchOptions;
  readonly env: ServerEnv;
  readonly issuer: DevIssuer;
  readonly servers: ServerPool;
  readonly upstream: IpcChild;
  readonly loadgen: IpcChild;
  /** This nginx has http_v2_module, so there are nginx (h2) rows. */
  readonly nginxH2: boolean;
  /** The figures of the scenarios that ran before this one. */
  readonly earlier: readonly Figure[];
  /** The load generator's target for `server`: direct gets the client certificate and identity headers, a proxy the bearer token. */
  target(server: Server, extra?: Partial<Target>): Target;
  /** A problem that does not stop the run: listed in RESULTS.md, and the smoke test fails on it. */
  problem(line: string): void;
}
