/**
 * Child processes of the harness and what /proc says about them. Every server
 * and the load generator run as children, so each is measured (CPU, RSS) on its
 * own and none shares an event loop with another.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CallMessage, EventMessage, ReplyMessage } from './ipc.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** `.ts` when the harness runs from source (tap's loader), `.js` when compiled. */
export const EXT = extname(fileURLToPath(import.meta.url));
/** The proxy's entry point, built from the same tree as this harness. */
export const PROXY_CLI = fileURLToPath(new URL(`../src/cli${EXT}`, import.meta.url));
export const benchScript = (name: string) => join(HERE, `${name}${EXT}`);
/** The source folder bench/ (the compiled harness lives in bench/out/build/bench/). */
export const BENCH_DIR = EXT === '.ts' ? HERE : join(HERE, '../../../');

/** Node flags for children: the parent's loader flags (tap's TypeScript loader), never its profiler or inspector. */
export function nodeFlags(): string[] {
  return process.execArgv.filter((a) => !/^--(cpu-prof|heap-prof|inspect|prof)/.test(a));
}

const CLK_TCK = 100;

/** User + system CPU time of processes, in ms (every thread counted). */
export function cpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      // Fields after the command name, which is in parentheses and may hold spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone: counts nothing
    }
  }
  return (ticks * 1000) / CLK_TCK;
}

/** Resident set size of processes, in KiB. */
export function rssKiB(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
      total += m ? Number(m[1]) : 0;
    } catch {
      // gone
    }
  }
  return total;
}

/** What each open descriptor of the processes points at (`socket:[inode]`, `pipe:[…]`, a path…), one entry per descriptor. */
export function openDescriptors(pids: readonly number[]): string[] {
  const out: string[] = [];
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      // gone
    }
    for (const fd of fds) {
      try {
        out.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        // closed meanwhile
      }
    }
  }
  return out;
}

/** A process and all its descendants (nginx's workers, a cluster's workers). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${out[i]}/task`)) {
        const children = readFileSync(`/proc/${out[i]}/task/${task}/children`, 'latin1').trim();
        if (children) out.push(...children.split(' ').map(Number));
      }
    } catch {
      // gone
    }
  }
  return out;
}

/** CPU time of the whole machine from /proc/stat, in ms summed over every core: spent in tasks (user, nice, system), and in all. */
export function machineCpu(): { taskMs: number; totalMs: number } {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const ticks = (i: number) => v[i] ?? 0;
  return { taskMs: ((ticks(0) + ticks(1) + ticks(2)) * 1000) / CLK_TCK, totalMs: (v.reduce((a, b) => a + b, 0) * 1000) / CLK_TCK };
}

/**
 * Cores used by processes that are not this harness or its children (other
 * work on a shared machine), over `ms`.
 */
export async function foreignCores(ms: number): Promise<number> {
  const take = () => ({ machine: machineCpu().taskMs, ours: cpuMs(processTree(process.pid)), at: performance.now() });
  const a = take();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = take();
  return Math.max(0, (b.machine - a.machine - (b.ours - a.ours)) / (b.at - a.at));
}

/** The open-file limit children get (the hard one, which cannot be raised without privileges). */
export function openFileLimit(): { soft: number; hard: number } {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
  const n = (s: string | undefined) => (s === undefined || s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s));
  return { soft: n(m?.[1]), hard: n(m?.[2]) };
}

/** A running child: its pid, its log, and how to stop it. */
export class Child {
  readonly #stderrTail: string[] = [];
  readonly #exited: Promise<number | null>;
  #exitCode: number | null | undefined;
  /** True when stop() had to SIGKILL it. */
  killed = false;

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
    logFile: string,
  ) {
    const log = createWriteStream(logFile, { flags: 'a' });
    for (const stream of [process.stdout, process.stderr]) {
      stream?.on('data', (data: Buffer) => {
        log.write(data);
        this.#stderrTail.push(...data.toString('utf8').split('\n').filter(Boolean));
        if (this.#stderrTail.length > 40) this.#stderrTail.splice(0, this.#stderrTail.length - 40);
      });
    }
    this.#exited = new Promise((resolve) =>
      process.once('exit', (code, signal) => {
        this.#exitCode = code ?? (signal ? null : 0);
        log.end();
        resolve(code);
      }),
    );
    process.on('error', () => undefined);
  }

  get pid(): number {
    return this.process.pid ?? -1;
  }

  get alive(): boolean {
    return this.#exitCode === undefined;
  }

  /** The last lines the child printed, for error messages. */
  tail(): string {
    return this.#stderrTail.join('\n');
  }

  exited(): Promise<number | null> {
    return this.#exited;
  }

  /** Asks it to stop (SIGTERM, or `signal`), and kills it if it has not within `ms`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 10_000): Promise<void> {
    if (!this.alive) return;
    this.process.kill(signal);
    const timer = setTimeout(() => {
      this.killed = true;
      this.process.kill('SIGKILL');
    }, ms);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** True when the process is gone (or a zombie). */
export function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/**
 * Stops a process tree: `signal` to the root, SIGKILL to the root after `ms`,
 * then waits for every descendant (a cluster's workers exit when their
 * primary does) and SIGKILLs what is left after another `ms`.
 */
export async function stopTree(child: Child, signal: NodeJS.Signals, ms: number): Promise<void> {
  const tree = child.alive ? processTree(child.pid) : [];
  await child.stop(signal, ms);
  const deadline = Date.now() + ms;
  while (!tree.every(gone) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  for (const pid of tree.filter((p) => !gone(p))) {
    child.killed = true;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** A child that speaks the calls of ipc.ts (upstream, load generator, forwarders). */
export class IpcChild extends Child {
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #listeners = new Map<string, ((data: unknown) => void)[]>();

  constructor(name: string, child: ChildProcess, logFile: string) {
    super(name, child, logFile);
    child.on('message', (message: ReplyMessage | EventMessage) => {
      if ('event' in message) {
        for (const fn of this.#listeners.get(message.event) ?? []) fn(message.data);
        return;
      }
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.error !== undefined) pending.reject(new Error(`${name}: ${message.error}`));
      else pending.resolve(message.result);
    });
    void this.exited().then((code) => {
      for (const { reject } of this.#pending.values()) reject(new Error(`${name} exited (${code}) during a call:\n${this.tail()}`));
      this.#pending.clear();
    });
  }

  call<T>(method: string, params?: unknown): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      if (!this.alive) return reject(new Error(`${this.name} is not running:\n${this.tail()}`));
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const message: CallMessage = { id, method, params };
      this.process.send(message);
    });
  }

  on(event: string, fn: (data: unknown) => void): () => void {
    const list = this.#listeners.get(event) ?? [];
    list.push(fn);
    this.#listeners.set(event, list);
    return () => list.splice(list.indexOf(fn) >>> 0, 1);
  }

  /** Resolves with the data of the first `event`, or rejects if the child exits first or `ms` pass. */
  next<T>(event: string, ms = 30_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${event} within ${ms} ms:\n${this.tail()}`)), ms);
      const off = this.on(event, (data) => {
        clearTimeout(timer);
        off();
        resolve(data as T);
      });
      void this.exited().then((code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code}) before ${event}:\n${this.tail()}`));
      });
    });
  }
}

/** Starts one of bench/'s node scripts with IPC and waits for its `ready` event. */
export async function startScript<T>(name: string, script: string, args: string[], logFile: string): Promise<{ child: IpcChild; ready: T }> {
  const proc = spawn(process.execPath, [...nodeFlags(), benchScript(script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: process.env,
  });
  const child = new IpcChild(name, proc, logFile);
  const ready = await child.next<T>('ready', 60_000);
  return { child, ready };
}
