/**
 * Not a scenario of the issue: one more scenario-1 window, kube-front-proxy
 * only, with the proxy started under `node --cpu-prof`, to say where its time
 * goes. It runs right after scenario 1 (on unless `--no-profile`).
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { POD_PATH } from '../fixtures.js';
import { summarizeProfiles } from '../profile.js';
import { KFP } from '../results.js';
import type { Scenario } from '../scenario.js';
import { startProxy } from '../servers/kube-front-proxy.js';
import { checkThroughput, closedWindow } from '../windows.js';

export const cpuProfile: Scenario = {
  id: 'profile',
  needs: () => [],
  async run(ctx) {
    const { options } = ctx;
    options.log('profile: one scenario-1 window with the proxy under --cpu-prof');
    const profileDir = join(options.outDir, 'profile');
    rmSync(profileDir, { recursive: true, force: true });
    mkdirSync(profileDir, { recursive: true });
    const server = await ctx.servers.fresh((env) => startProxy(env, `${KFP} --cpu-prof`, { profileDir }));
    const w = await closedWindow(ctx, server, { path: POD_PATH, connections: options.connections, warmupMs: options.warmupMs, durationMs: options.windowMs });
    checkThroughput(ctx, 'profile window', w.result);
    await server.stop();
    const files = mainThreadProfiles(profileDir, server.pid);
    if (!files.length) {
      ctx.problem('profile: the proxy wrote no .cpuprofile (did it exit cleanly on SIGTERM?)');
      return { figures: [] };
    }
    const summary = summarizeProfiles(files, 20, w.clock);
    return { figures: [], profile: { ...summary, rps: w.result.rps, cpuUsPerRequest: w.proxyUs ?? Number.NaN } };
  },
};

/**
 * CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: main threads only (not
 * loader-hook threads), and when a cluster wrote several processes' profiles,
 * not the primary's: it only supervises.
 */
export function mainThreadProfiles(dir: string, primary: number | undefined): string[] {
  const mains = readdirSync(dir)
    .map((f) => ({ f, m: /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(f) }))
    .filter((x) => x.m && x.m[2] === '0')
    .map((x) => ({ file: x.f, pid: Number(x.m![1]) }));
  return (new Set(mains.map((x) => x.pid)).size > 1 ? mains.filter((x) => x.pid !== primary) : mains).map((x) => join(dir, x.file));
}
