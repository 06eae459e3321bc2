/**
 * Small numeric helpers shared by the load generator and the report:
 * growable sample buffers, percentiles, medians.
 */

/** A growable buffer of float samples (latencies in ms), cheap to append to. */
export class Samples {
  #data = new Float64Array(1024);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(value: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#length++] = value;
  }

  clear(): void {
    this.#length = 0;
  }

  /** A sorted copy of the samples. */
  sorted(): Float64Array {
    return this.#data.slice(0, this.#length).sort();
  }
}

/** The p-th percentile (0–100) of sorted values, nearest-rank; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Median of unsorted values; NaN when empty or when any is NaN. */
export function median(values: readonly number[]): number {
  if (values.length === 0 || values.some((v) => Number.isNaN(v))) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The standard summary of a latency distribution, in ms. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** [percentile, ms] points for plotting, from p0 to p99.9. */
  readonly curve: ReadonlyArray<readonly [number, number]>;
}

/** Percentiles plotted: dense towards the tail, as HdrHistogram plots do. */
const CURVE_POINTS = [0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 97.5, 98, 98.5, 99, 99.25, 99.5, 99.75, 99.9];

export function summarize(samples: Samples): LatencySummary {
  const s = samples.sorted();
  return {
    count: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    p999: percentile(s, 99.9),
    max: s.length ? s[s.length - 1] : Number.NaN,
    curve: CURVE_POINTS.map((p) => [p, p === 0 ? (s[0] ?? Number.NaN) : percentile(s, p)] as const),
  };
}

/** The least-squares slope of y over x; NaN with fewer than two distinct x. */
export function slope(points: ReadonlyArray<readonly [x: number, y: number]>): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return n < 2 || sxx === 0 ? Number.NaN : sxy / sxx;
}
