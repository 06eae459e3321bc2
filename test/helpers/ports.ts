/** Free loopback ports for servers that cannot be told to pick one (redis-server, kube-apiserver) or must be known in advance. */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';

/** A port that was free a moment ago: bind port 0, read it, close. A tiny race with other processes remains. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
