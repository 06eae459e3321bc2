/**
 * What the soak reads of the proxy's process tree (primary and workers) from
 * /proc while it runs: RSS and open descriptors every few seconds, the RSS
 * slope after warm-up, and what each descriptor is, so that the ones still
 * open after the soak can be named.
 */
import { readFileSync } from 'node:fs';
import { openDescriptors, rssKiB } from '../children.js';
import type { Server } from '../servers/server.js';
import { slope } from '../stats.js';

export interface TreeSample {
  /** Since the soak's load started. */
  readonly atMs: number;
  readonly rssKiB: number;
  readonly fds: number;
}

/** RSS and descriptor samples of one server's process tree. */
export class TreeMeter {
  readonly samples: TreeSample[] = [];

  constructor(
    private readonly server: Server,
    private readonly start = performance.now(),
  ) {}

  sample(): TreeSample {
    const pids = this.server.pids();
    const s = { atMs: performance.now() - this.start, rssKiB: rssKiB(pids), fds: openDescriptors(pids).length };
    this.samples.push(s);
    return s;
  }

  /** Least-squares RSS slope over the samples after `warmupMs`: KiB a minute, and that as a share of their mean RSS. */
  rssSlope(warmupMs: number): { kibPerMin: number; pctPerMin: number; meanKiB: number; samples: number } {
    const after = this.samples.filter((s) => s.atMs >= warmupMs);
    const kibPerMin = slope(after.map((s) => [s.atMs / 60_000, s.rssKiB] as const));
    const meanKiB = after.reduce((a, s) => a + s.rssKiB, 0) / Math.max(1, after.length);
    return { kibPerMin, pctPerMin: (kibPerMin / meanKiB) * 100, meanKiB, samples: after.length };
  }

  peakFds(): number {
    return Math.max(...this.samples.map((s) => s.fds));
  }
}

/** TCP sockets by inode, from /proc/net/tcp{,6}: their ports and whether they listen. */
function tcpSockets(): Map<string, { remotePort: number; listening: boolean }> {
  const out = new Map<string, { remotePort: number; listening: boolean }>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines: string[] = [];
    try {
      lines = readFileSync(file, 'latin1').split('\n').slice(1);
    } catch {
      // no IPv6
    }
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      out.set(f[9], { remotePort: parseInt(f[2].split(':')[1], 16), listening: f[3] === '0A' });
    }
  }
  return out;
}

/**
 * Each descriptor by kind: a TCP socket as listening, to the upstream or
 * another connection (a client's), other sockets (the cluster's IPC channels),
 * pipes, epoll and the like by their kind, files by their path.
 */
export function descriptorKinds(pids: readonly number[], upstreamPort: number): Map<string, number> {
  const tcp = tcpSockets();
  const kinds = new Map<string, number>();
  for (const target of openDescriptors(pids)) {
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    const t = inode === undefined ? undefined : tcp.get(inode);
    const kind =
      inode === undefined
        ? target.replace(/^(pipe|anon_inode):.*?(\[[a-z_]+\])?$/, (_m, k: string, sub?: string) => `${k}${sub ?? ''}`)
        : !t
          ? 'socket (not TCP: IPC)'
          : t.listening
            ? 'listening socket'
            : t.remotePort === upstreamPort
              ? 'connection to the upstream'
              : 'other TCP connection';
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return kinds;
}

/** What is open after that was not before (and the reverse), e.g. "+2 connection to the upstream, −1 pipe"; '' when the same. */
export function descriptorDiff(before: Map<string, number>, after: Map<string, number>): string {
  const parts: string[] = [];
  for (const kind of new Set([...before.keys(), ...after.keys()])) {
    const d = (after.get(kind) ?? 0) - (before.get(kind) ?? 0);
    if (d !== 0) parts.push(`${d > 0 ? '+' : '−'}${Math.abs(d)} ${kind}`);
  }
  return parts.join(', ');
}

/** How many descriptors of the kinds. */
export const total = (kinds: Map<string, number>): number => [...kinds.values()].reduce((a, b) => a + b, 0);

/**
 * After the soak: waits (up to `ms`) for the proxy's descriptors to come back
 * within `allowance` of the baseline (an idle upstream connection closes only
 * after its keep-alive or idle timeout), then names what is open that was not.
 */
export async function settleDescriptors(server: Server, upstreamPort: number, baseline: Map<string, number>, allowance: number, ms: number) {
  const start = performance.now();
  let kinds = descriptorKinds(server.pids(), upstreamPort);
  while (total(kinds) > total(baseline) + allowance && performance.now() - start < ms) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    kinds = descriptorKinds(server.pids(), upstreamPort);
  }
  return { after: total(kinds), seconds: (performance.now() - start) / 1000, diff: descriptorDiff(baseline, kinds) };
}
