/**
 * An HTTP/1.1 request written byte for byte over TLS, for header smuggling
 * tests: no client library normalises, merges or re-cases the header lines.
 */
import { connect } from 'node:tls';

export interface RawResponse {
  readonly status: number;
  /** Header lines as received: [name, value] pairs, names as sent by the server. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
  header(name: string): string | undefined;
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(data.subarray(at, eol).toString(), 16);
    if (!size) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/**
 * Sends `lines` (each "Name: value", exactly as given) after the request line
 * and Host, with Connection: close, and reads the whole response. `body` gets a
 * Content-Length; `rawBody` is sent as is after the head, framing left to `lines`.
 */
export function rawRequest(
  url: string,
  ca: string,
  method: string,
  path: string,
  lines: readonly string[],
  body = '',
  rawBody?: string,
): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca, servername: hostname === '127.0.0.1' ? undefined : hostname });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const data = Buffer.concat(chunks);
      const split = data.indexOf('\r\n\r\n');
      if (split < 0) return reject(new Error(`no response head in ${JSON.stringify(data.toString().slice(0, 200))}`));
      const [statusLine = '', ...headerLines] = data.subarray(0, split).toString('latin1').split('\r\n');
      const headers = headerLines.map((l) => {
        const colon = l.indexOf(':');
        return [l.slice(0, colon), l.slice(colon + 1).trim()] as const;
      });
      const header = (name: string) => headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
      const rest = data.subarray(split + 4);
      const text = (header('transfer-encoding') === 'chunked' ? dechunk(rest) : rest).toString('utf8');
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: text, header });
      socket.destroy();
    });
    socket.once('secureConnect', () => {
      const head = [
        `${method} ${path} HTTP/1.1`,
        `Host: ${hostname}:${port}`,
        ...lines,
        ...(body ? [`Content-Length: ${Buffer.byteLength(body)}`] : []),
        'Connection: close',
      ];
      // write, not end: Node's HTTP server aborts a request whose client half-closes (httpAllowHalfOpen is off).
      // Connection: close makes the server close once it has answered.
      socket.write(`${head.join('\r\n')}\r\n\r\n${rawBody ?? body}`);
    });
  });
}
