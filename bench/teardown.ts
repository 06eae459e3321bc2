/**
 * Everything a run must stop at its end, whether it finished or failed:
 * servers that are still starting are waited for first, so that none is left
 * running.
 */
export class Teardown {
  readonly #stops: (() => Promise<unknown>)[] = [];
  readonly #starting: Promise<unknown>[] = [];

  /** Stops these at the end. */
  add(...stops: (() => Promise<unknown>)[]): void {
    this.#stops.push(...stops);
  }

  /** A server being started: stopped at the end once it has started, and waited for even when the run failed. */
  track<T extends { stop(): Promise<unknown> }>(starting: Promise<T>): Promise<T> {
    const started = starting.then((server) => (this.#stops.push(() => server.stop()), server));
    this.#starting.push(started);
    return started;
  }

  /** Stops everything; returns what failed to stop. */
  async run(): Promise<string[]> {
    await Promise.allSettled(this.#starting);
    const problems: string[] = [];
    // All at once: a proxy that needs its SIGKILL grace period must not hold up the others.
    await Promise.all(this.#stops.map((stop) => stop().catch((err: unknown) => problems.push(`cleanup: ${String(err)}`))));
    return problems;
  }
}
