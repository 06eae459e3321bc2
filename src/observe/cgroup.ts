/**
 * The CPU quota and the memory limit of the cgroup this process runs in (v1 or
 * v2), found the way Go's runtime finds its CPU limit for GOMAXPROCS
 * (internal/runtime/cgroup): /proc/self/cgroup names our cgroup in each
 * hierarchy, /proc/self/mountinfo says where that hierarchy is mounted and from
 * which root (a container sees its own cgroup as the mount's root). Unlike Go,
 * every cgroup from ours up to that root is read and the tightest limit counts:
 * a parent's quota binds its children too.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ContainerLimits {
  /** CPUs' worth of time per period (cpu.max "150000 100000" is 1.5); undefined: no quota. */
  readonly cpus?: number;
  /** Bytes; undefined: no limit. */
  readonly memoryBytes?: number;
  /** Why a limit is unknown: a cgroup file that could not be read or parsed, a hierarchy not mounted. */
  readonly problems: readonly string[];
}

type Controller = 'cpu' | 'memory';

interface Membership {
  readonly version: 1 | 2;
  readonly path: string;
}

/** v1 writes "no limit" as the largest page-aligned count it can hold (0x7FFFFFFFFFFFF000 with 4 KiB pages); libuv reads it the same way. */
const V1_UNLIMITED_BYTES = 2 ** 62;

/** `root` stands for `/` (a test points it at a directory shaped like one). */
export function readContainerLimits(root = '/'): ContainerLimits {
  const read = (path: string) => readFileSync(join(root, path), 'utf8');
  let memberships: string;
  let mounts: string;
  try {
    memberships = read('/proc/self/cgroup');
    mounts = read('/proc/self/mountinfo');
  } catch (err) {
    // No /proc: not Linux, so no cgroups to obey.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { problems: [] };
    return { problems: [`/proc/self: ${(err as Error).message}`] };
  }
  const problems: string[] = [];
  const limit = (controller: Controller): number | undefined => {
    const member = membershipOf(memberships, controller);
    if (!member) return undefined;
    const mounted = mountedPath(mounts, controller, member);
    if (!mounted) {
      problems.push(`${controller}: cgroup v${member.version} ${member.path} is not mounted here`);
      return undefined;
    }
    try {
      return tightest(mounted, (level) => readLimit(read, level, controller, member.version));
    } catch (err) {
      problems.push(`${controller}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const cpus = limit('cpu');
  const memoryBytes = limit('memory');
  return { ...(cpus !== undefined && { cpus }), ...(memoryBytes !== undefined && { memoryBytes }), problems };
}

/** Our cgroup for a controller: its v1 hierarchy if it has one, else the v2 ("0::") one. */
function membershipOf(memberships: string, controller: Controller): Membership | undefined {
  let unified: string | undefined;
  for (const line of memberships.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const [hierarchy, controllers, path] = [line.slice(0, first), line.slice(first + 1, second), line.slice(second + 1)];
    if (!path.startsWith('/')) continue;
    if (hierarchy === '0' && controllers === '') unified = path;
    else if (controllers.split(',').includes(controller)) return { version: 1, path };
  }
  return unified === undefined ? undefined : { version: 2, path: unified };
}

/** Where our cgroup's directory is, through the mount of its hierarchy (mountinfo: proc(5)). */
function mountedPath(mounts: string, controller: Controller, member: Membership): { mountPoint: string; dir: string } | undefined {
  for (const line of mounts.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0) continue;
    const [fsType, superOptions = ''] = [fields[separator + 1], fields[separator + 3]];
    if (member.version === 1 ? fsType !== 'cgroup' || !superOptions.split(',').includes(controller) : fsType !== 'cgroup2') continue;
    const mountRoot = unescapeMountPath(fields[3]);
    const relative = mountRoot === '/' ? member.path : withinRoot(member.path, mountRoot);
    // Our cgroup is outside what this mount shows (moved since, or another namespace's mount).
    if (relative === undefined || relative.startsWith('/..')) continue;
    const mountPoint = unescapeMountPath(fields[4]);
    return { mountPoint, dir: relative === '/' ? mountPoint : join(mountPoint, relative) };
  }
  return undefined;
}

function withinRoot(path: string, root: string): string | undefined {
  if (path === root) return '/';
  return path.startsWith(`${root}/`) ? path.slice(root.length) : undefined;
}

/** mountinfo writes space, tab, newline and backslash as \ooo. */
const unescapeMountPath = (path: string) => path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** The smallest limit from our cgroup up to the mount point, levels without one skipped. */
function tightest({ mountPoint, dir }: { mountPoint: string; dir: string }, limitAt: (dir: string) => number | undefined): number | undefined {
  let found: number | undefined;
  for (let level = dir; ; level = join(level, '..')) {
    const here = limitAt(level);
    if (here !== undefined) found = Math.min(found ?? here, here);
    if (level === mountPoint || level === '/') return found;
  }
}

/** One cgroup's limit; undefined when it sets none. A file that is missing sets none (v2's root cgroup has no cpu.max). */
function readLimit(read: (path: string) => string, dir: string, controller: Controller, version: 1 | 2): number | undefined {
  const file = (name: string) => {
    try {
      return read(join(dir, name)).trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`${join(dir, name)}: ${(err as Error).message}`, { cause: err });
    }
  };
  const number = (name: string, text: string) => {
    if (!/^-?\d+$/.test(text)) throw new Error(`${join(dir, name)}: not a number: ${JSON.stringify(text.slice(0, 40))}`);
    return Number(text);
  };
  if (controller === 'cpu' && version === 2) {
    const max = file('cpu.max');
    if (max === undefined) return undefined;
    const [quota = '', period = ''] = max.split(' ');
    if (quota === 'max') return undefined;
    return ratio(number('cpu.max', quota), number('cpu.max', period), 'cpu.max');
  }
  if (controller === 'cpu') {
    const quota = file('cpu.cfs_quota_us');
    if (quota === undefined || number('cpu.cfs_quota_us', quota) < 0) return undefined;
    const period = file('cpu.cfs_period_us');
    if (period === undefined) throw new Error(`${join(dir, 'cpu.cfs_period_us')}: missing beside cpu.cfs_quota_us`);
    return ratio(Number(quota), number('cpu.cfs_period_us', period), 'cpu.cfs_period_us');
  }
  const name = version === 2 ? 'memory.max' : 'memory.limit_in_bytes';
  const bytes = file(name);
  if (bytes === undefined || bytes === 'max') return undefined;
  const value = number(name, bytes);
  return value >= V1_UNLIMITED_BYTES ? undefined : value;

  function ratio(quota: number, period: number, name: string) {
    if (period <= 0 || quota <= 0) throw new Error(`${join(dir, name)}: quota ${quota} over period ${period}`);
    return quota / period;
  }
}
