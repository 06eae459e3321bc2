// Abuse limits: an oversized request head, a client that sends its head too slowly,
// and malformed HTTP get a Status answer; the proxy keeps serving afterwards.
import { once } from 'node:events';
import { connect, type TLSSocket } from 'node:tls';
import t from 'tap';
import { startStack, untilReady } from '../helpers/stack.js';

async function rawExchange(socket: TLSSocket, text: string | undefined): Promise<string> {
  if (text !== undefined) socket.write(text);
  let answer = '';
  for await (const chunk of socket) answer += chunk;
  return answer;
}

t.test('limits', async (t) => {
  const stack = await startStack(t, {
    configure: (c) => ({ ...c, listen: { ...c.listen, maxHeaderBytes: 4096, headerTimeout: '500ms', bodyTimeout: '1s' } }),
  });
  await untilReady(stack.proxy);
  const open = async () => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(stack.proxy.url).port), ca: stack.servingCA, servername: 'localhost' });
    await once(socket, 'secureConnect');
    return socket;
  };

  t.test('an oversized head: 431 Status', async (t) => {
    const answer = await rawExchange(await open(), `GET /api HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8192)}\r\n\r\n`);
    t.match(answer, /^HTTP\/1\.1 431 /);
    t.match(answer, /"kind":"Status"/);
  });

  t.test('a head sent too slowly (slowloris): 408 Status', async (t) => {
    const socket = await open();
    socket.write('GET /api HTTP/1.1\r\nHost: x\r\n'); // and never the blank line
    const answer = await rawExchange(socket, undefined);
    t.match(answer, /^HTTP\/1\.1 408 /);
  });

  t.test('malformed HTTP: 400 Status', async (t) => {
    const answer = await rawExchange(await open(), 'GET /api HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
    t.match(answer, /^HTTP\/1\.1 400 /);
    t.match(answer, /"reason":"BadRequest"/);
  });

  t.test('still serving', async (t) => {
    const res = await stack.fetch('/api', { headers: { authorization: `Bearer ${await stack.mint()}` } });
    t.equal(res.statusCode, 200);
    await res.body.dump();
  });
});
