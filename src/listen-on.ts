/** Binding a server to a configured "host:port": the proxy's listeners and the primary's health listener. */
import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server as TlsServer } from 'node:tls';

/** Listens on "host:port" and returns the bound "host:port" (port 0 resolved). */
export async function listenOn(server: TlsServer | HttpServer, address: string): Promise<string> {
  const split = address.lastIndexOf(':');
  const host = address.slice(0, split).replace(/^\[|\]$/g, '');
  server.listen(Number(address.slice(split + 1)), host || undefined);
  await once(server, 'listening');
  const bound = server.address() as AddressInfo;
  return bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
}
