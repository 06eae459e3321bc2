/**
 * Reading one watch: over HTTP/1.1 on a raw TLS socket of its own (the head,
 * then the chunked body), or as a stream of a shared HTTP/2 session; either
 * way every event line is timed by the upstream's monotonic clock in its
 * resourceVersion (CLOCK_MONOTONIC is one clock for every process).
 */
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { rawRequest, requestHead } from './connect.js';
import { http2Stream } from './http2.js';
import type { Target } from './jobs.js';

const RESOURCE_VERSION = /"resourceVersion":"(\d+)"/;

/** Called once per watch: open (a 200 head), or not and why. */
export type OnHead = (ok: boolean, why?: string) => void;
/** Called per event with its delivery delay. */
export type OnEvent = (delayMs: number) => void;

/** Splits a watch body into lines and times every event line by the clock in its resourceVersion. */
class EventLines {
  #line = '';

  constructor(private readonly onEvent: OnEvent) {}

  push(text: string, now: bigint): void {
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      const line = this.#line + text.slice(from, nl);
      this.#line = '';
      from = nl + 1;
      const rv = RESOURCE_VERSION.exec(line);
      if (rv) this.onEvent(Number(now - BigInt(rv[1])) / 1e6);
    }
    this.#line += text.slice(from);
  }
}

/**
 * One watch on its own connection: reads the response head, then de-chunks the
 * body and hands it to EventLines.
 */
export class Watch {
  #buffer = '';
  #state: 'head' | 'size' | 'data' | 'crlf' | 'raw' | 'end' = 'head';
  #remaining = 0;
  readonly #events: EventLines;
  readonly socket: TLSSocket;

  constructor(
    target: Target,
    path: string,
    private readonly onHead: OnHead,
    onEvent: OnEvent,
  ) {
    this.#events = new EventLines(onEvent);
    this.socket = rawRequest(target, requestHead(target, path, []));
    this.socket.on('data', (data: Buffer) => this.#read(data.toString('latin1')));
    this.socket.on('error', (err: Error) => this.#fail(err.message));
    this.socket.on('close', () => this.#fail('closed before the response head'));
  }

  #fail(why: string): void {
    if (this.#state === 'head') {
      this.#state = 'end';
      this.onHead(false, why);
    }
  }

  #read(text: string): void {
    const now = process.hrtime.bigint();
    this.#buffer += text;
    for (;;) {
      switch (this.#state) {
        case 'head': {
          const end = this.#buffer.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = this.#buffer.slice(0, end);
          this.#buffer = this.#buffer.slice(end + 4);
          if (!/^HTTP\/1\.1 200 /.test(head)) {
            this.#state = 'end';
            this.onHead(false, head.split('\r\n', 1)[0]);
            this.socket.destroy();
            return;
          }
          this.#state = /\r\ntransfer-encoding:\s*chunked/i.test(head) ? 'size' : 'raw';
          this.onHead(true);
          continue;
        }
        case 'size': {
          const end = this.#buffer.indexOf('\r\n');
          if (end < 0) return;
          this.#remaining = parseInt(this.#buffer.slice(0, end), 16);
          this.#buffer = this.#buffer.slice(end + 2);
          this.#state = this.#remaining === 0 ? 'end' : 'data';
          continue;
        }
        case 'data': {
          const take = Math.min(this.#remaining, this.#buffer.length);
          this.#events.push(this.#buffer.slice(0, take), now);
          this.#buffer = this.#buffer.slice(take);
          this.#remaining -= take;
          if (this.#remaining > 0) return;
          this.#state = 'crlf';
          continue;
        }
        case 'crlf':
          if (this.#buffer.length < 2) return;
          this.#buffer = this.#buffer.slice(2);
          this.#state = 'size';
          continue;
        case 'raw':
          this.#events.push(this.#buffer, now);
          this.#buffer = '';
          return;
        case 'end':
          this.#buffer = '';
          return;
      }
    }
  }
}

/** One watch as a stream of a shared HTTP/2 session: the response head (or with `early`, the request sent), then the lines of its DATA frames. */
export function http2Watch(session: ClientHttp2Session, headers: OutgoingHttpHeaders, early: boolean, onHead: OnHead, onEvent: OnEvent): ClientHttp2Stream {
  const events = new EventLines(onEvent);
  let waiting = true;
  const fail = (why: string) => {
    if (waiting) {
      waiting = false;
      onHead(false, why);
    }
  };
  const stream = http2Stream(session, headers);
  const opened = () => {
    if (waiting) {
      waiting = false;
      onHead(true);
    }
  };
  // On a connected session the stream gets its id (and emits 'ready') inside request() already.
  if (early) {
    if (stream.id === undefined) stream.once('ready', opened);
    else setImmediate(opened);
  }
  stream.on('response', (h) => {
    if (h[':status'] !== 200) {
      fail(`HTTP/2 ${h[':status']}`);
      stream.close();
      return;
    }
    opened();
  });
  stream.on('data', (data: Buffer) => events.push(data.toString('latin1'), process.hrtime.bigint()));
  stream.on('error', (err: Error) => fail(err.message));
  stream.on('close', () => fail(`stream closed before the response head (code ${stream.rstCode})`));
  return stream;
}
