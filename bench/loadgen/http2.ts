/**
 * HTTP/2 to the target with node:http2 directly (no undici): sessions, the
 * header lines as HTTP/2 header objects, and one GET per stream.
 */
import { connect as http2Connect, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import { headerSource, tlsFiles, type Done } from './connect.js';
import type { Target } from './jobs.js';

/** An HTTP/2 session to the target (ALPN h2), once the server's SETTINGS have arrived. */
export function http2Session(target: Target): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(target.origin, { ...tlsFiles(target), rejectUnauthorized: true, settings: { enablePush: false } });
    const fail = (err: Error) => {
      clearTimeout(timer);
      session.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error('no HTTP/2 SETTINGS within 10 s')), 10_000);
    session.once('error', fail);
    session.once('remoteSettings', () => {
      if (session.alpnProtocol !== 'h2') return fail(new Error(`ALPN chose ${String(session.alpnProtocol)}, not h2`));
      clearTimeout(timer);
      session.off('error', fail);
      // A session's error also errors each of its streams, which is where it is counted.
      session.on('error', () => undefined);
      resolve(session);
    });
  });
}

/** The header lines of `headerSource` as HTTP/2 header objects (names in lower case, a repeated name as a list), made once each. */
export function http2HeaderSource(target: Target, path: string): (n: number) => OutgoingHttpHeaders {
  const linesFor = headerSource(target);
  const made = new Map<string[], OutgoingHttpHeaders>();
  return (n) => {
    const lines = linesFor(n);
    let headers = made.get(lines);
    if (!headers) {
      headers = { ':method': 'GET', ':path': path };
      for (let i = 0; i < lines.length; i += 2) {
        const name = lines[i].toLowerCase();
        const had = headers[name];
        headers[name] = had === undefined ? lines[i + 1] : [...(Array.isArray(had) ? had : [String(had)]), lines[i + 1]];
      }
      made.set(lines, headers);
    }
    return headers;
  };
}

/** Opens one stream with a GET; the request's end goes with its HEADERS frame. */
export function http2Stream(session: ClientHttp2Session, headers: OutgoingHttpHeaders): ClientHttp2Stream {
  return session.request(headers, { endStream: true });
}

/** One request as a stream of `session`; `done` once the stream has closed. */
export function fireHttp2(session: ClientHttp2Session, headers: OutgoingHttpHeaders, done: Done): void {
  let stream: ClientHttp2Stream;
  try {
    stream = http2Stream(session, headers);
  } catch (err) {
    // The session is gone (closed, GOAWAY): fail asynchronously, as a dispatch would.
    setImmediate(done, err as Error, 0);
    return;
  }
  let status = 0;
  let error: Error | null = null;
  stream.on('response', (h) => (status = Number(h[':status'])));
  stream.on('data', () => undefined);
  stream.on('error', (err: Error) => (error = err));
  stream.on('close', () => done(error ?? (status ? null : new Error(`stream closed without a response (code ${stream.rstCode})`)), status));
}
