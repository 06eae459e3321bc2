/**
 * A real redis-server per test file: a child process on a free loopback port,
 * no persistence, killed in teardown. `stop()` and `start()` make an outage
 * and the recovery from it on the same port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

interface TestLike {
  testdir(): string;
  teardown(fn: () => unknown): void;
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Kills the server (SIGKILL, like a crash); its data is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open but nothing answers, like a half-open link. */
  pause(): void;
  /** Thaws a paused server (SIGCONT). */
  resume(): void;
}

export async function startRedis(t: TestLike): Promise<RedisServer> {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error('redis-server is not installed (.ci/run installs it)');
  }
  const dir = t.testdir();
  const port = await freePort();
  let child: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;

  const stop = async () => {
    watchdog?.kill('SIGKILL');
    watchdog = undefined;
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGKILL');
    await exited;
  };

  const start = async () => {
    if (child) throw new Error('redis-server is already running');
    const c = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1', '--dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    c.stdout.on('data', (d: Buffer) => (output += d.toString()));
    c.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child = c;
    watchdog = killWhenWeDie(c.pid!);
    const deadline = Date.now() + 10_000;
    while (!(await pings(port))) {
      if (c.exitCode !== null) throw new Error(`redis-server exited (${c.exitCode}):\n${output}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on port ${port}:\n${output}`);
      await sleep(20);
    }
  };

  const signal = (sig: NodeJS.Signals) => {
    if (!child) throw new Error('redis-server is not running');
    child.kill(sig);
  };

  t.teardown(stop);
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, stop, start, pause: () => signal('SIGSTOP'), resume: () => signal('SIGCONT') };
}

/**
 * redis-server outlives a test process that is killed (a tap timeout) and skips
 * its teardown. This shell holds our end of a pipe and kills the server when
 * the pipe closes, which it does when this process goes, however it goes.
 */
function killWhenWeDie(pid: number): ChildProcess {
  const dog = spawn('sh', ['-c', `read _; kill -9 ${pid} 2>/dev/null`], { stdio: ['pipe', 'ignore', 'ignore'] });
  dog.unref();
  (dog.stdin as unknown as { unref(): void }).unref();
  return dog;
}


function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}
