// `Expect: 100-continue`: curl sends it with any upload over 1 MiB, and kubectl's
// client-go may too. The client gets its 100 from the proxy (Node answers it), and
// the upstream gets the request without the expectation: undici refuses to send
// an Expect header at all, which used to turn every such upload into a 502.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { connect as http2Connect } from 'node:http2';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { openRaw, requestHead } from '../helpers/raw-tls.js';
import { startStack, untilReady } from '../helpers/stack.js';

const run = promisify(execFile);
const curlVersion = await run('curl', ['--version']).then(
  (r) => r.stdout.split('\n')[0],
  () => undefined,
);

t.test('uploads with Expect: 100-continue reach the upstream whole', async (t) => {
  const stack = await startStack(t);
  await untilReady(stack.proxy);
  const authorization = `Bearer ${await stack.mint()}`;
  const dir = t.testdir();
  const body = randomBytes(2 * 1024 * 1024);
  const file = join(dir, 'upload.bin');
  await writeFile(file, body);
  await writeFile(join(dir, 'ca.pem'), stack.servingCA);
  const echoed = () => stack.upstream.seen.filter((s) => s.url === '/debug/echo').at(-1);

  for (const version of ['--http1.1', '--http2']) {
    t.test(`curl ${version} --data-binary @file (2 MiB)`, { skip: curlVersion ? false : 'curl is not installed' }, async (t) => {
      const out = join(dir, `out${version}.bin`);
      const { stdout, stderr } = await run('curl', [
        version, '--silent', '--show-error', '--verbose', '--cacert', join(dir, 'ca.pem'),
        '-H', `Authorization: ${authorization}`, '-H', 'Content-Type: application/octet-stream',
        // curl adds the expectation itself above 1 MiB over HTTP/1.1; said explicitly, so both versions carry it.
        '-H', 'Expect: 100-continue',
        '--data-binary', `@${file}`, '--output', out, '--write-out', '%{http_code}',
        `${stack.proxy.url}/debug/echo`,
      ], { maxBuffer: 1024 * 1024 });
      t.match(stderr, /> expect: 100-continue/i, 'curl sent the expectation');
      t.equal(stdout, '200', `curl saw 200 (${curlVersion})`);
      t.ok((await readFile(out)).equals(body), 'the body came back byte for byte');
      const seen = echoed();
      t.ok(seen, 'the upstream got the upload');
      t.notOk(seen!.rawHeaders.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'expect'), 'without the expectation, which the proxy has met');
    });
  }

  t.test('HTTP/2 client with expect: 100-continue', async (t) => {
    const session = http2Connect(stack.proxy.url, { ca: stack.servingCA });
    session.on('error', () => {});
    t.teardown(() => session.close());
    const stream = session.request({ ':method': 'POST', ':path': '/debug/echo', authorization, expect: '100-continue', 'content-type': 'application/octet-stream' });
    // The body goes only after the interim 100, as a client that asked for it does.
    stream.once('continue', () => stream.end(body));
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    const [head] = (await once(stream, 'response')) as [Record<string, unknown>];
    await once(stream, 'end');
    t.equal(head[':status'], 200);
    t.ok(Buffer.concat(chunks).equals(body), 'the body came back byte for byte');
  });
});

t.test('100 Continue only once the caller is authenticated: an anonymous client is not invited to upload', async (t) => {
  const stack = await startStack(t);
  await untilReady(stack.proxy);
  const { host } = new URL(stack.proxy.url);
  const ask = async (lines: string[]) => {
    const conn = await openRaw(stack.proxy.url, stack.servingCA, t);
    conn.write(requestHead('POST', '/debug/echo', host, ['Expect: 100-continue', 'Content-Length: 5', ...lines]));
    return conn.until((s) => /^HTTP\/1\.1 \d{3} /.test(s));
  };
  t.match(await ask([]), /^HTTP\/1\.1 401 /, 'no credentials: 401 at once, no 100 first');
  t.match(await ask(['Authorization: Bearer not-a-jwt']), /^HTTP\/1\.1 401 /, 'a bad token: 401 at once');
  t.match(await ask([`Authorization: Bearer ${await stack.mint()}`]), /^HTTP\/1\.1 100 /, 'a valid token: 100 Continue');
});
