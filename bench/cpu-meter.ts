/**
 * CPU over a measured window, from /proc: the proxy's process tree, the
 * upstream, the load generator, and other work on this shared machine.
 */
import { cpuMs, foreignCores, machineCpu, processTree, type Child, type IpcChild } from './children.js';
import type { ClockWindow } from './profile.js';
import type { Server } from './servers/server.js';
import { DIRECT } from './results.js';

export interface CpuReading {
  /** CPU µs of the measured proxy per request; undefined for direct. */
  readonly proxyUs: number | undefined;
  readonly upstreamUs: number;
  readonly loadgenUs: number;
  /** Cores used by work that is not ours (other sessions on a shared machine) during the window. */
  readonly foreignCores: number;
  /** The measured window on the monotonic clock. */
  readonly clock: ClockWindow;
}

/** Above this many foreign cores a window is marked as disturbed. */
export const NOISY_CORES = 0.3;

/** The children a meter reads besides the server. */
export interface Metered {
  readonly loadgen: IpcChild;
  readonly upstream: Child;
}

/** Reads CPU time at the load generator's start and end marks (or now, when no mark came). */
export function cpuMeter({ loadgen, upstream }: Metered, server: Server) {
  const take = () => ({
    proxy: cpuMs(server.pids()),
    upstream: cpuMs([upstream.pid]),
    loadgen: cpuMs([loadgen.pid]),
    ours: cpuMs(processTree(process.pid)),
    machine: machineCpu().taskMs,
    at: performance.now(),
    clockUs: Number(process.hrtime.bigint() / 1000n),
  });
  let start = take();
  let end: ReturnType<typeof take> | undefined;
  const off = loadgen.on('mark', (data) => {
    if ((data as { phase: string }).phase === 'start') start = take();
    else end = take();
  });
  return {
    off,
    read(requests: number): CpuReading {
      const e = end ?? take();
      const per = (a: number, b: number) => ((b - a) * 1000) / Math.max(1, requests);
      return {
        proxyUs: server.name === DIRECT ? undefined : per(start.proxy, e.proxy),
        upstreamUs: per(start.upstream, e.upstream),
        loadgenUs: per(start.loadgen, e.loadgen),
        foreignCores: Math.max(0, (e.machine - start.machine - (e.ours - start.ours)) / Math.max(1, e.at - start.at)),
        clock: { fromUs: start.clockUs, toUs: e.clockUs },
      };
    },
  };
}

/** Waits (up to `ms`) until other work on the machine is under NOISY_CORES. */
export async function waitForQuiet(ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && (await foreignCores(500)) > NOISY_CORES) {
    // another session is busy on this machine: let it finish
  }
}
