/**
 * The jobs the load generator runs for the harness, and what each answers
 * with: the whole protocol between them besides the `mark` events.
 */
import type { LatencySummary } from '../stats.js';

/** Where and how to connect, and what every request carries. */
export interface Target {
  readonly origin: string;
  /** PEM file paths: the CA that signed the server, and an optional client certificate. */
  readonly caFile: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  /** Header lines [name, value, …] added to every request. */
  readonly headers: readonly string[];
  /** A JSON file holding an array of bearer tokens, used one after another (replacing any Authorization line of `headers`). */
  readonly tokensFile?: string;
}

export interface ClosedJob {
  readonly target: Target;
  readonly path: string;
  readonly connections: number;
  readonly warmupMs: number;
  /** Also warm up until this many requests were answered, an equal share on each connection (e.g. one pass over every token). */
  readonly warmupRequests?: number;
  readonly durationMs: number;
  readonly newConnectionPerRequest?: boolean;
  /** Over HTTP/2: the `connections` requests in flight become streams spread over this many sessions. */
  readonly http2Sessions?: number;
}

export interface OpenJob {
  readonly target: Target;
  readonly path: string;
  readonly connections: number;
  readonly rate: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface ThroughputResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly firstError?: string;
  readonly latency: LatencySummary;
}

export interface OpenResult extends ThroughputResult {
  readonly targetRate: number;
  readonly lagP99: number;
  readonly lagMax: number;
}

export interface WatchOpenJob {
  readonly target: Target;
  readonly path: string;
  readonly count: number;
  readonly concurrency: number;
  /** Over HTTP/2: this many watches (streams) per session, so ceil(count / http2Streams) sessions. */
  readonly http2Streams?: number;
  /**
   * Over HTTP/2: count a watch open once its request is sent, not when its response head arrives,
   * for a server that holds the head back until the first event (nginx 1.22 does, over HTTP/2 only).
   * The harness then checks at the upstream that every watch arrived, and that every event was delivered.
   */
  readonly headWithFirstEvent?: boolean;
  /** The watches' group: each has its own event delays (the soak's direct and proxied watches, side by side). */
  readonly group?: string;
}

export interface WatchOpenResult {
  readonly opened: number;
  readonly failed: number;
  readonly firstError?: string;
  readonly seconds: number;
}

/** Which group watchCollect reads, or watchClose closes (none: the default group; for watchClose, every group). */
export interface WatchGroupJob {
  readonly group?: string;
}

export interface WatchCollectResult {
  readonly events: number;
  readonly open: number;
  /** Watches of the group that closed without being asked to since they opened (an error: a watch ended early). */
  readonly ended: number;
  readonly delay: LatencySummary;
}

/** Watches opened at `rate` a second for `durationMs`, each closed by the client after `lifeMs`: watches that come and go. */
export interface WatchChurnJob {
  readonly target: Target;
  readonly path: string;
  readonly rate: number;
  readonly lifeMs: number;
  readonly durationMs: number;
}

export interface WatchChurnResult {
  readonly opened: number;
  /** No 200 head. */
  readonly failed: number;
  /** Closed by the other side before their life was over. */
  readonly endedEarly: number;
  readonly firstError?: string;
}

export interface UpgradeJob {
  readonly target: Target;
  readonly path: string;
  readonly rate: number;
  readonly durationMs: number;
}

export interface UpgradeResult {
  readonly sessions: number;
  readonly failed: number;
  readonly firstError?: string;
  readonly latency: LatencySummary;
}

export interface TunnelJob {
  readonly target: Target;
  readonly path: string;
  readonly bytes: number;
}

export interface TunnelResult {
  readonly bytes: number;
  readonly seconds: number;
  readonly bytesPerSecond: number;
  /** Connect to 101. */
  readonly setupMs: number;
}
