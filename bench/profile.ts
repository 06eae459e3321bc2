/**
 * Reads V8 .cpuprofile files (node --cpu-prof) and says where the time went:
 * self time by function and by area (TLS, HTTP parsing, undici, jose, logging,
 * our own code, GC, idle), and inclusive time of the proxy's own functions.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  /** µs on the monotonic clock (process.hrtime's, in µs). */
  readonly startTime: number;
}

/** A span of the monotonic clock, in µs (process.hrtime.bigint() / 1000n). */
export interface ClockWindow {
  readonly fromUs: number;
  readonly toUs: number;
}

export interface ProfileRow {
  readonly name: string;
  /** Share of the busy (not idle) sampled time, 0–1. */
  readonly share: number;
  readonly ms: number;
}

export interface ProfileSummary {
  readonly files: number;
  readonly totalMs: number;
  /** Wall-clock ms of the window the samples were taken in (per process). */
  readonly windowMs?: number;
  /** Share of the time the proxy's thread was idle (waiting for I/O). */
  readonly idleShare: number;
  readonly areas: readonly ProfileRow[];
  readonly selfTop: readonly ProfileRow[];
  /** Inclusive time of functions in the proxy's own source (src/). */
  readonly ownInclusiveTop: readonly ProfileRow[];
}

/** Which part of the stack a frame belongs to, by its script URL. */
export function area(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'V8/native (program)';
  if (/\/src\/|\/build\/src\//.test(url) && !url.includes('node_modules')) return 'kube-front-proxy (src/)';
  if (url.includes('node_modules/undici/')) return 'undici';
  if (url.includes('node_modules/jose/')) return 'jose (JWT)';
  if (/node_modules\/(pino|sonic-boom|thread-stream|fast-redact|quick-format-unescaped)\//.test(url)) return 'pino (audit/log)';
  if (url.includes('node_modules/prom-client/')) return 'prom-client (metrics)';
  if (url.includes('node_modules/lru-cache/')) return 'lru-cache';
  if (url.includes('node_modules/')) return `other packages`;
  if (/node:_tls|node:internal\/tls|node:tls/.test(url)) return 'node TLS';
  if (/node:_http|node:internal\/http|node:http/.test(url)) return 'node HTTP server';
  if (/node:net|node:internal\/net|node:internal\/stream_base/.test(url)) return 'node net/streams';
  if (/node:internal\/streams|node:stream/.test(url)) return 'node net/streams';
  if (/node:internal\/crypto|node:crypto/.test(url)) return 'node crypto';
  if (/node:internal\/(timers|process\/task_queues|async_hooks)|node:timers|node:events|node:internal\/event_target/.test(url)) return 'node events/timers/microtasks';
  if (url.startsWith('node:')) return 'node (other)';
  if (url === '') return `native: ${functionName || '(anonymous)'}`;
  return 'other';
}

const shortUrl = (url: string) =>
  url.replace(/^file:\/\/.*?\/(node_modules\/|src\/|bench\/)/, '$1').replace(/^file:\/\/.*\/build\/src\//, 'src/');

const frameName = (f: CallFrame) => `${f.functionName || '(anonymous)'}${f.url ? ` ${shortUrl(f.url)}:${f.lineNumber + 1}` : ''}`;

/**
 * Sums one or more profiles (a cluster writes one per worker), counting only
 * the samples taken inside `window` when one is given (V8 stamps samples with
 * the same monotonic clock as process.hrtime).
 */
export function summarizeProfiles(files: readonly string[], top = 20, window?: ClockWindow): ProfileSummary {
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    // Time of each node from the sample deltas (the delta after a sample belongs to it).
    const nodeTime = new Map<number, number>();
    let at = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      at += profile.timeDeltas[i] ?? 0;
      if (window && (at < window.fromUs || at > window.toUs)) continue;
      const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
      nodeTime.set(profile.samples[i], (nodeTime.get(profile.samples[i]) ?? 0) + dt);
    }
    for (const [id, ms] of nodeTime) {
      const node = byId.get(id);
      if (!node) continue;
      total += ms;
      const a = area(node.callFrame);
      if (a === 'idle') idle += ms;
      areas.set(a, (areas.get(a) ?? 0) + ms);
      const name = frameName(node.callFrame);
      self.set(name, (self.get(name) ?? 0) + ms);
      // Inclusive: every distinct own function on the stack gets the time once.
      const seen = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const frame = byId.get(at)!.callFrame;
        if (area(frame) !== 'kube-front-proxy (src/)') continue;
        const fname = frameName(frame);
        if (seen.has(fname)) continue;
        seen.add(fname);
        inclusive.set(fname, (inclusive.get(fname) ?? 0) + ms);
      }
    }
  }
  // Shares are of the busy time: the idle share says how loaded the proxy was, not where its work went.
  const busy = total - idle;
  const rows = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .filter(([name]) => name !== 'idle' && name !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, ms]) => ({ name, ms, share: busy > 0 ? ms / busy : 0 }));
  return {
    files: files.length,
    totalMs: total,
    ...(window && { windowMs: (window.toUs - window.fromUs) / 1000 }),
    idleShare: total ? idle / total : 0,
    areas: rows(areas, 30),
    selfTop: rows(self, top),
    ownInclusiveTop: rows(inclusive, top),
  };
}

/** Busy stretches of at least one length: how many, and what they were spent on. */
export interface StretchSummary {
  readonly minMs: number;
  readonly count: number;
  /** Their summed length, ms. */
  readonly ms: number;
  /** Where their samples went, by area, as shares of `ms`. */
  readonly areas: readonly ProfileRow[];
  /** The longest few, each with the area most of its samples were in. */
  readonly longest: readonly { readonly ms: number; readonly area: string; readonly top: string }[];
}

/**
 * The stretches in which the proxy's thread never went idle, of at least each
 * of `thresholdsMs`: an event that arrives during one waits for its end, so
 * these are what a delay percentile over direct is made of. Sampled, so a
 * stretch is known to within one sampling interval.
 */
export function busyStretches(files: readonly string[], thresholdsMs: readonly number[], window?: ClockWindow): StretchSummary[] {
  const stretches: { ms: number; areas: Map<string, number>; frames: Map<string, { area: string; ms: number }> }[] = [];
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    let current: (typeof stretches)[number] | undefined;
    let at = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      at += profile.timeDeltas[i] ?? 0;
      if (window && (at < window.fromUs || at > window.toUs)) continue;
      const frame = byId.get(profile.samples[i])?.callFrame;
      if (!frame) continue;
      const a = area(frame);
      if (a === 'idle') {
        if (current) stretches.push(current);
        current = undefined;
        continue;
      }
      const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
      current ??= { ms: 0, areas: new Map(), frames: new Map() };
      current.ms += dt;
      current.areas.set(a, (current.areas.get(a) ?? 0) + dt);
      const name = frameName(frame);
      current.frames.set(name, { area: a, ms: (current.frames.get(name)?.ms ?? 0) + dt });
    }
    if (current) stretches.push(current);
  }
  const largest = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
  // The function with the most samples inside the stretch's largest area.
  const topIn = (s: (typeof stretches)[number], a: string) =>
    [...s.frames.entries()].filter(([, f]) => f.area === a).sort((x, y) => y[1].ms - x[1].ms)[0]?.[0] ?? '';
  return thresholdsMs.map((minMs) => {
    const long = stretches.filter((s) => s.ms >= minMs);
    const ms = long.reduce((sum, s) => sum + s.ms, 0);
    const areas = new Map<string, number>();
    for (const s of long) for (const [a, t] of s.areas) areas.set(a, (areas.get(a) ?? 0) + t);
    return {
      minMs,
      count: long.length,
      ms,
      areas: [...areas.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([name, t]) => ({ name, ms: t, share: ms ? t / ms : 0 })),
      longest: [...long]
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 5)
        .map((s) => {
          const a = largest(s.areas);
          return { ms: s.ms, area: a, top: topIn(s, a) };
        }),
    };
  });
}
