// The command line: exit codes and messages a person sees.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { devPki } from './helpers/stack.js';

const run = promisify(execFile);
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;

async function cli(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

t.test('--help documents the flags', async (t) => {
  const { code, stdout } = await cli('--help');
  t.equal(code, 0);
  for (const flag of ['--config', '--check-config', '--log-level', 'quickstart']) t.match(stdout, flag);
});

t.test('no arguments: usage error, not a silent start', async (t) => {
  const { code, stderr } = await cli();
  t.equal(code, 2);
  t.match(stderr, /--config FILE is required/);
});

t.test('a broken config names the key and exits 1', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'bad.yaml');
  await writeFile(file, 'listen:\n  adress: 127.0.0.1:8443\nupstream:\n  url: https://127.0.0.1:6443\n');
  const { code, stderr } = await cli('--config', file, '--check-config');
  t.equal(code, 1);
  t.match(stderr, /listen\.adress/);
  t.match(stderr, /listen\.tls/);
});

t.test('--check-config accepts a valid config', async (t) => {
  const pki = await devPki();
  const dir = t.testdir();
  const file = join(dir, 'ok.yaml');
  await writeFile(
    file,
    [
      'listen:',
      `  tls: { certFile: ${pki.servingCert}, keyFile: ${pki.servingKey} }`,
      'upstream:',
      '  url: https://127.0.0.1:6443',
      `  caFile: ${pki.upstreamCA}`,
      `  clientCertFile: ${pki.frontProxyClientCert}`,
      `  clientKeyFile: ${pki.frontProxyClientKey}`,
    ].join('\n'),
  );
  const { code, stdout } = await cli('--config', file, '--check-config');
  t.equal(code, 0);
  t.match(stdout, /configuration is valid/);
});
