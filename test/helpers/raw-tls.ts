/**
 * A TLS connection to the proxy driven byte by byte, for attacks a client
 * library would never send: pipelined requests after an upgrade head, bytes
 * after a refusal, several Upgrade tokens. Reads accumulate; waits are bounded.
 */
import { connect, type TLSSocket } from 'node:tls';

export interface RawConnection {
  readonly socket: TLSSocket;
  write(data: string | Buffer): void;
  /** Everything received so far, as latin1 text. */
  received(): string;
  /** Waits until `predicate(received())` holds; throws after `ms`. */
  until(predicate: (text: string) => boolean, ms?: number): Promise<string>;
  /** Resolves true when the server closes the connection within `ms`, false otherwise. */
  closedWithin(ms: number): Promise<boolean>;
}

export async function openRaw(url: string, ca: string, t: { teardown(fn: () => unknown): void }): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port), ca, ALPNProtocols: ['http/1.1'] });
  t.teardown(() => socket.destroy());
  const chunks: Buffer[] = [];
  let closed = false;
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((w) => w());
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    wake();
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
    wake();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const received = () => Buffer.concat(chunks).toString('latin1');
  const wait = (done: () => boolean, ms: number) =>
    new Promise<boolean>((resolve) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        resolve(false);
      }, ms);
      waiters.add(check);
      check();
    });
  return {
    socket,
    write: (data) => void socket.write(data),
    received,
    async until(predicate, ms = 5_000) {
      if (!(await wait(() => predicate(received()) || closed, ms)) || !predicate(received())) {
        throw new Error(`not received within ${ms} ms (closed: ${closed}); got ${JSON.stringify(received().slice(0, 500))}`);
      }
      return received();
    },
    closedWithin: (ms) => wait(() => closed, ms),
  };
}

/** An HTTP/1.1 request head as raw text; `lines` are "Name: value". */
export function requestHead(method: string, target: string, host: string, lines: readonly string[]): string {
  return `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
}

/** How many HTTP/1.x status lines a byte stream holds (a second one means a second response). */
export function countResponses(text: string): number {
  return text.match(/HTTP\/1\.[01] \d{3} /g)?.length ?? 0;
}
