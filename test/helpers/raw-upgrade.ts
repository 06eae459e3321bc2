/**
 * Upgrade requests (WebSocket, SPDY/3.1) written byte for byte, for tests of who
 * may open a tunnel: the header lines are exactly the caller's (no client library
 * adds an Origin or re-cases a header), and the answer is read as far as needed —
 * the head of a 101, the whole Status of a refusal — then the connection is closed.
 */
import { randomBytes } from 'node:crypto';
import { openRaw, requestHead } from './raw-tls.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** The answer to an upgrade request. */
export interface UpgradeAnswer {
  readonly status: number;
  /** A response header's value (names compared case-insensitively). */
  header(name: string): string | undefined;
  /** The body of a refusal, decoded as UTF-8; empty after a 101. */
  readonly body: string;
}

/** What a browser's `new WebSocket(url, protocols)` sends, Origin and cookies aside. */
export function websocketLines(protocols: readonly string[] = ['v5.channel.k8s.io']): string[] {
  return [
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    ...(protocols.length ? [`Sec-WebSocket-Protocol: ${protocols.join(', ')}`] : []),
  ];
}

/** What kubectl's SPDY dialer sends for exec. */
export const SPDY_LINES: readonly string[] = ['Connection: Upgrade', 'Upgrade: SPDY/3.1', 'X-Stream-Protocol-Version: v4.channel.k8s.io'];

/**
 * Sends `method target` with `Host` = the URL's host and `lines`, and reads the answer.
 * A refusal's body is read by its Content-Length (or until the server closes).
 */
export async function sendUpgrade(t: Teardown, url: string, ca: string, method: string, target: string, lines: readonly string[]): Promise<UpgradeAnswer> {
  const conn = await openRaw(url, ca, t);
  conn.write(requestHead(method, target, new URL(url).host, lines));
  const text = await conn.until((s) => s.includes('\r\n\r\n'));
  const split = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...headerLines] = text.slice(0, split).split('\r\n');
  const headers = headerLines.map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const;
  });
  const header = (name: string) => headers.find(([n]) => n === name.toLowerCase())?.[1];
  const status = Number(statusLine.split(' ')[1]);
  let body = '';
  if (status !== 101) {
    const length = Number(header('content-length'));
    const complete = (s: string) => s.length - (split + 4) >= length;
    const all = Number.isInteger(length) ? await conn.until(complete) : ((await conn.closedWithin(5_000)), conn.received());
    // received() is latin1: one char per byte, so this restores the bytes.
    body = Buffer.from(all.slice(split + 4), 'latin1').toString('utf8');
  }
  conn.socket.destroy();
  return { status, header, body };
}
