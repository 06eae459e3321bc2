// Upgrade tunnels resume the upstream's TLS session instead of a full handshake with
// client certificate each time, and never resume one made with a certificate since replaced.
import { once } from 'node:events';
import { copyFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import t from 'tap';
import { silentLogger } from '../../src/observe/logger.js';
import { Upstream } from '../../src/proxy/upstream.js';
import { startStack } from '../helpers/stack.js';

/** Connects, and reports whether the handshake resumed a session; after a full one, waits for the ticket. */
async function tunnelHandshake(upstream: Upstream): Promise<boolean> {
  const socket = upstream.connect() as TLSSocket;
  const ticket = once(socket, 'session');
  await once(socket, 'secureConnect');
  const resumed = socket.isSessionReused();
  socket.resume(); // TLS 1.3 tickets arrive after the handshake, and are read like data
  if (!resumed) await ticket; // (a resumed session may bring no new one)
  socket.destroy();
  return resumed;
}

t.test('tunnel connections resume the TLS session, until the client certificate changes', async (t) => {
  const stack = await startStack(t);
  const dir = t.testdir();
  const certFile = join(dir, 'client.crt');
  const keyFile = join(dir, 'client.key');
  await copyFile(stack.pki.frontProxyClientCert, certFile);
  await copyFile(stack.pki.frontProxyClientKey, keyFile);
  const upstream = new Upstream({ ...stack.config.upstream!, clientCertFile: certFile, clientKeyFile: keyFile }, silentLogger);
  t.teardown(() => upstream.close());

  t.equal(await tunnelHandshake(upstream), false, 'the first connection does a full handshake');
  t.equal(await tunnelHandshake(upstream), true, 'the next one resumes');
  t.equal(await tunnelHandshake(upstream), true, 'and the next');

  // A rotated certificate (the same bytes will do: a new mtime is a change).
  const later = new Date(Date.now() + 5000);
  await Promise.all([utimes(certFile, later, later), utimes(keyFile, later, later)]);
  await new Promise((r) => setTimeout(r, 1500)); // the files are polled every second
  t.equal(await tunnelHandshake(upstream), false, 'after a certificate reload: a full handshake, not the old identity');
  t.equal(await tunnelHandshake(upstream), true, 'then resumption again');
});
