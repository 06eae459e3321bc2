/**
 * `watchOpen`/`watchCollect`/`watchClose`: many idle watches on raw TLS
 * sockets (one connection each, as HTTP/1.1 clients hold them), or with
 * `http2Streams` as streams of shared HTTP/2 sessions (that many per session,
 * as client-go's informers share one connection), then the delivery delay of
 * each event. The watches stay open between calls, in this module.
 */
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import { Samples, summarize } from '../stats.js';
import { destroyAll } from './connect.js';
import { http2HeaderSource, http2Session } from './http2.js';
import type { WatchCollectResult, WatchOpenJob, WatchOpenResult } from './jobs.js';
import { Watch, http2Watch, type OnEvent, type OnHead } from './watch-readers.js';

const watches = new Set<Watch | ClientHttp2Stream>();
const watchSessions = new Set<ClientHttp2Session>();
const eventDelays = new Samples();

/** How watch number `i` is opened: on a connection of its own, or as a stream of session floor(i / http2Streams). */
async function watchOpener(job: WatchOpenJob): Promise<(i: number, onHead: OnHead, onEvent: OnEvent) => Watch | ClientHttp2Stream> {
  const perSession = job.http2Streams;
  if (!perSession) return (_i, onHead, onEvent) => new Watch(job.target, job.path, onHead, onEvent);
  const sessions = await Promise.all(
    Array.from({ length: Math.ceil(job.count / perSession) }, () => http2Session(job.target).then((s) => (watchSessions.add(s), s))),
  );
  for (const session of sessions) {
    const allowed = session.remoteSettings.maxConcurrentStreams ?? Infinity;
    if (allowed < perSession) throw new Error(`the server allows ${allowed} concurrent streams per HTTP/2 connection, not the ${perSession} asked for`);
  }
  const headers = http2HeaderSource(job.target, job.path)(0);
  return (i, onHead, onEvent) => http2Watch(sessions[Math.floor(i / perSession)], headers, job.headWithFirstEvent === true, onHead, onEvent);
}

/** Opens `count` watches, `concurrency` at a time; they stay open until watchClose. */
export async function watchOpen(job: WatchOpenJob): Promise<WatchOpenResult> {
  const start = performance.now();
  const openOne = await watchOpener(job);
  let opened = 0;
  let failed = 0;
  let started = 0;
  let firstError: string | undefined;
  await new Promise<void>((resolve) => {
    const next = () => {
      if (started >= job.count) {
        if (opened + failed === job.count) resolve();
        return;
      }
      const onHead = (ok: boolean, why?: string) => {
        if (ok) opened++;
        else {
          failed++;
          firstError ??= why;
          watches.delete(watch!);
        }
        next();
      };
      let watch: Watch | ClientHttp2Stream | undefined;
      try {
        watch = openOne(started++, onHead, (delay) => eventDelays.push(delay));
      } catch (err) {
        // An HTTP/2 session that is gone refuses new streams at once.
        setImmediate(onHead, false, (err as Error).message);
        return;
      }
      watches.add(watch);
    };
    for (let i = 0; i < Math.min(job.concurrency, job.count); i++) next();
    if (job.count === 0) resolve();
  });
  return { opened, failed, ...(firstError !== undefined ? { firstError } : {}), seconds: (performance.now() - start) / 1000 };
}

/** The delays of the events since the last collect, and how many watches are open. */
export function watchCollect(): WatchCollectResult {
  const result = { events: eventDelays.length, open: watches.size, delay: summarize(eventDelays) };
  eventDelays.clear();
  return result;
}

/** Closes every watch: HTTP/1.1 ones with their connections, HTTP/2 ones with their sessions. */
export async function watchClose(): Promise<number> {
  const count = watches.size;
  const sockets = [...watches].flatMap((w) => (w instanceof Watch ? [w.socket] : []));
  const sessions = [...watchSessions];
  watches.clear();
  watchSessions.clear();
  await destroyAll([...sockets, ...sessions]);
  return count;
}
