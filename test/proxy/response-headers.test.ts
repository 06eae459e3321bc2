// What the client sees of the upstream's response head (src/proxy/response-headers.ts).
import t from 'tap';
import { clientResponseHeaders } from '../../src/proxy/response-headers.js';

const none = () => false;

t.test('hop-by-hop lines are dropped, the rest keep their order', async (t) => {
  const upstream = ['Content-Type', 'application/json', 'Connection', 'close, X-Hop', 'X-Hop', '1', 'Keep-Alive', 'timeout=5', 'Proxy-Connection', 'x', 'Audit-ID', 'a', 'Transfer-Encoding', 'chunked'];
  t.same(clientResponseHeaders(200, upstream, none), ['Content-Type', 'application/json', 'Audit-ID', 'a']);
});

t.test('HTTP2-Settings never reaches a client: Node refuses an HTTP/2 response head that carries it', async (t) => {
  t.same(clientResponseHeaders(200, ['HTTP2-Settings', 'AAMAAABkAAQAAP__', 'X-App', '1'], none), ['X-App', '1']);
});

t.test('a 101 keeps the switch itself', async (t) => {
  t.same(clientResponseHeaders(101, ['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Accept', 'x'], none), [
    'Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Accept', 'x',
  ]);
});

t.test('a name the response Connection lists is dropped however its dashes are spelt', async (t) => {
  t.same(clientResponseHeaders(200, ['Connection', 'X_Hop', 'x-hop', '1', 'X_Hop', '2', 'X-App', '3'], none), ['X-App', '3']);
});
