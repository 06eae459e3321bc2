/** Free loopback ports for servers that cannot be told to pick one (redis-server, kube-apiserver) or must be known in advance. */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';

/**
 * Ports below the kernel's ephemeral range: the kernel never hands these out for listen(0) or an
 * outgoing connection, so a port chosen here cannot be taken by another test's client socket
 * between this check and its server's listen (it was: EADDRINUSE in CI when freePort bound
 * port 0, which other test files' sockets share). Empty where the range starts too low.
 */
const RESERVED_BELOW = (() => {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return low > 11_000 ? { from: 10_000, to: low - 1 } : undefined;
  } catch {
    return undefined;
  }
})();

/** A port that was free a moment ago (only another freePort caller could pick it too, at random). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; RESERVED_BELOW && attempt < 20; attempt++) {
    const port = RESERVED_BELOW.from + Math.floor(Math.random() * (RESERVED_BELOW.to - RESERVED_BELOW.from + 1));
    if (await bindable(port)) return port;
  }
  return bound(0);
}

async function bindable(port: number): Promise<boolean> {
  return bound(port).then(
    () => true,
    () => false,
  );
}

async function bound(port: number): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const { port: chosen } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return chosen;
}
