/**
 * What every mode of the load generator shares: the target's TLS files, the
 * header lines of each request, undici pools with the cheapest handler, and
 * raw TLS sockets for watches and upgrades.
 */
import { readFileSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import type { Target } from './jobs.js';

const USER_AGENT = 'kubectl/v1.33.0 (linux/amd64) kubernetes/bench';

export interface TlsFiles {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

const fileCache = new Map<string, Buffer>();
const file = (path: string): Buffer => {
  let data = fileCache.get(path);
  if (!data) fileCache.set(path, (data = readFileSync(path)));
  return data;
};

/** The target's CA and client certificate, read once per process. */
export function tlsFiles(target: Target): TlsFiles {
  return {
    ca: file(target.caFile),
    ...(target.certFile && { cert: file(target.certFile) }),
    ...(target.keyFile && { key: file(target.keyFile) }),
  };
}

const tokenLists = new Map<string, readonly string[]>();
/** The target's token list, parsed once per process (a job asks for it and for its length). */
function tokens(target: Target): readonly string[] | undefined {
  if (!target.tokensFile) return undefined;
  let list = tokenLists.get(target.tokensFile);
  if (!list) tokenLists.set(target.tokensFile, (list = JSON.parse(file(target.tokensFile).toString('utf8')) as string[]));
  return list;
}

/** How many tokens the target's list holds (0: none, every request carries the target's own headers). */
export function tokenCount(target: Target): number {
  return tokens(target)?.length ?? 0;
}

/** The target's header lines without any Authorization line. */
function withoutAuthorization(lines: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i += 2) if (lines[i].toLowerCase() !== 'authorization') kept.push(lines[i], lines[i + 1]);
  return kept;
}

/**
 * Header lines for request `n`: the target's own, then the n-th token if there
 * are tokens, which replaces the target's Authorization line (a server reads
 * only the first one, so keeping both would send the same token every time).
 */
export function headerSource(target: Target): (n: number) => string[] {
  const list = tokens(target);
  const base = ['user-agent', USER_AGENT, 'accept', 'application/json, */*', ...(list?.length ? withoutAuthorization(target.headers) : target.headers)];
  if (!list?.length) return () => base;
  const withTokens = list.map((t) => [...base, 'authorization', `Bearer ${t}`]);
  return (n) => withTokens[n % withTokens.length];
}

/** Keep-alive connections to the target, one request at a time on each. */
export function pool(target: Target, connections: number, freshConnections: boolean): Pool {
  return new Pool(target.origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    // A new kubectl process has no TLS session to resume: every handshake is full.
    connect: { ...tlsFiles(target), rejectUnauthorized: true, maxCachedSessions: freshConnections ? 0 : 100 },
  });
}

/** Called once per request, when it is answered or has failed. */
export type Done = (err: Error | null, status: number) => void;

/** One request through the pool with the lowest-overhead handler undici offers. */
export function fire(dispatcher: Dispatcher, path: string, headers: string[], reset: boolean, done: Done): void {
  let status = 0;
  dispatcher.dispatch(
    { path, method: 'GET', headers, reset },
    {
      onRequestStart() {},
      onResponseStart(_c, statusCode) {
        status = statusCode;
      },
      onResponseData() {},
      onResponseEnd() {
        done(null, status);
      },
      onResponseError(_c, err) {
        done(err, status);
      },
    },
  );
}

/** Connects a raw TLS socket to the target and writes one request head. */
export function rawRequest(target: Target, head: string): TLSSocket {
  const url = new URL(target.origin);
  const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ...tlsFiles(target), rejectUnauthorized: true });
  socket.setNoDelay(true);
  socket.once('secureConnect', () => socket.write(head));
  return socket;
}

/** An HTTP/1.1 GET head with the target's header lines, then `extra` ones. */
export function requestHead(target: Target, path: string, extra: readonly string[]): string {
  const headers = headerSource(target)(0);
  let head = `GET ${path} HTTP/1.1\r\nHost: ${new URL(target.origin).host}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** Destroys sockets or sessions and resolves once every one has closed. */
export function destroyAll(all: Iterable<TLSSocket | ClientHttp2Session>): Promise<unknown> {
  return Promise.all(
    [...all].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.destroyed) return resolve();
          s.once('close', () => resolve());
          s.destroy();
        }),
    ),
  );
}
