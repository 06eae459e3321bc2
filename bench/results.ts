/**
 * What a run produces: one figure per measure, one sample per window and
 * configuration, latency curves for the plot; and the names of the
 * configurations (the rows of RESULTS.md).
 */
import type { BenchOptions } from './options.js';
import type { ProfileSummary } from './profile.js';

// The configurations every figure's samples are named after.
export const DIRECT = 'direct';
export const KFP = 'kube-front-proxy';
export const NGINX = 'nginx';
export const HTTP_PROXY = 'http-proxy';
export const NOAUTH = 'kube-front-proxy no-auth build';
/** kube-front-proxy with upstream.http2: off (HTTP/1.1 to the upstream, undici's pool): the default before issue 15. */
export const KFP_UPSTREAM_H1 = `${KFP} upstream HTTP/1.1`;
/** oauth2-proxy built from its Go module (issue 15), when scripts/oauth2-proxy/build.sh has built it. */
export const OAUTH2_PROXY = 'oauth2-proxy';
/** The same servers, with clients over HTTP/2 (the rows are named after the HTTP/1.1 ones with this suffix). */
export const H2 = ' (h2)';
export const KFP_H2 = `${KFP}${H2}`;
export const NGINX_H2 = `${NGINX}${H2}`;

/** One window's figure for one configuration. */
export interface Measurement {
  readonly config: string;
  readonly round: number;
  readonly value: number;
  /** CPU of the measured proxy process tree per unit of work (see Figure.cpuUnit). */
  readonly cpuUs?: number;
  /** Anything else worth keeping (CPU of the upstream and the load generator, machine busy share, errors). */
  readonly extra?: Readonly<Record<string, number | string>>;
}

export interface Figure {
  readonly id: string;
  readonly scenario: number;
  readonly title: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  /** Compare latencies as differences (ms) and everything else as ratios. */
  readonly compare: 'ratio' | 'difference';
  readonly cpuUnit?: string;
  /** The configuration a third column compares with (the baselines). */
  readonly baseline?: string;
  /** Take direct and nginx from this figure when this one has none of its own. */
  readonly directFrom?: string;
  readonly samples: Measurement[];
}

export interface Curve {
  readonly config: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
}

export interface BenchResults {
  readonly startedAt: string;
  readonly seconds: number;
  readonly options: Omit<BenchOptions, 'log'>;
  readonly machine: { readonly nproc: number; readonly cpuModel: string; readonly memoryGiB: number; readonly kernel: string; readonly openFiles: number };
  readonly versions: {
    readonly node: string;
    readonly nginx: string;
    readonly kubeFrontProxy: string;
    readonly undici: string;
    readonly upstream: string;
    /** `oauth2-proxy --version`, or 'not built'. */
    readonly oauth2Proxy: string;
  };
  readonly figures: Figure[];
  readonly curves: { readonly s2: Curve[]; readonly s4: Curve[] };
  readonly notes: string[];
  readonly profile?: ProfileSummary & { readonly rps: number; readonly cpuUsPerRequest: number };
  readonly errors: string[];
}

/** A figure with no samples yet; a scenario adds one per window. */
export function newFigure(f: Omit<Figure, 'samples'>): Figure {
  return { ...f, samples: [] };
}
