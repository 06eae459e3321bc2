/**
 * Where the kube-apiserver and etcd binaries for test/kube come from:
 * `KUBE_APISERVER` and `ETCD` when both are set (envtest's binaries work),
 * otherwise scripts/kube/build.sh, which builds the pinned versions with the Go
 * toolchain on this machine into .cache/kube/ and reuses them afterwards.
 *
 * Without either, the test files are skipped with a loud reason; with
 * `KFP_REQUIRE_KUBE=1` (CI) that skip is a failure instead.
 */
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface KubeBinaries {
  readonly apiserver: string;
  readonly etcd: string;
}

/** The root test object of a file: tap's `t`, which can skip, fail and extend its own timeout. */
export interface RootTest {
  plan(count: number, comment?: string): unknown;
  fail(reason: string): unknown;
  comment(...message: unknown[]): unknown;
  setTimeout(ms: number): unknown;
}

const BUILD_SCRIPT = join(import.meta.dirname, '../../../scripts/kube/build.sh');
/** A cold build of both binaries takes about ten minutes on two cores; leave room. */
const BUILD_TIMEOUT_MS = 40 * 60_000;

const executable = (file: string) => access(file, constants.X_OK).then(() => true, () => false);
const onPath = (tool: string) => run('sh', ['-c', `command -v ${tool}`]).then(() => true, () => false);

/**
 * The binaries, or undefined after the file was skipped (or, with
 * KFP_REQUIRE_KUBE=1, failed) with the reason. Builds them when needed,
 * extending the file's timeout for the build.
 */
export async function kubeBinaries(t: RootTest): Promise<KubeBinaries | undefined> {
  const unavailable = (reason: string) => {
    const required = process.env.KFP_REQUIRE_KUBE === '1';
    const message = `test/kube ${required ? 'FAILED' : 'SKIPPED'}: ${reason}`;
    // Printed on stderr too, so a skip is seen even when the TAP summary is not read.
    process.stderr.write(`\n*** ${message} ***\n\n`);
    if (required) t.fail(`${reason} (KFP_REQUIRE_KUBE=1 makes this a failure)`);
    else t.plan(0, `${reason}; set KUBE_APISERVER and ETCD, or install Go, to run the real-apiserver tests`);
    return undefined;
  };

  if (!(await onPath('kubectl'))) return unavailable('kubectl is not on PATH');
  const { KUBE_APISERVER, ETCD } = process.env;
  for (const [name, file] of [['KUBE_APISERVER', KUBE_APISERVER], ['ETCD', ETCD]] as const) {
    if (file && !(await executable(file))) return unavailable(`${name}=${file} is not an executable file`);
  }
  if (KUBE_APISERVER && ETCD) return { apiserver: KUBE_APISERVER, etcd: ETCD };
  if (!(await onPath('go'))) {
    return unavailable('neither Go (to build kube-apiserver and etcd) nor KUBE_APISERVER and ETCD (prebuilt binaries) is available');
  }

  const fresh = await run('bash', [BUILD_SCRIPT, '--check']).then(() => true, () => false);
  if (!fresh) {
    t.setTimeout(BUILD_TIMEOUT_MS);
    t.comment('building kube-apiserver and etcd with Go (scripts/kube/build.sh); the first build takes minutes');
  }
  try {
    const { stdout } = await run('bash', [BUILD_SCRIPT], { maxBuffer: 16 * 1024 * 1024, timeout: BUILD_TIMEOUT_MS });
    const found = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((line) => line.split('=', 2) as [string, string]),
    );
    if (!found.KUBE_APISERVER || !found.ETCD) throw new Error(`build.sh printed no paths: ${stdout}`);
    return { apiserver: found.KUBE_APISERVER, etcd: found.ETCD };
  } catch (err) {
    const e = err as Error & { stderr?: string };
    // A failed build is a broken pin or toolchain, never a reason to skip.
    t.fail(`scripts/kube/build.sh failed: ${e.message}\n${(e.stderr ?? '').slice(-4000)}`);
    return undefined;
  }
}
