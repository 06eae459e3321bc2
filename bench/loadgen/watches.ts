/**
 * `watchOpen`/`watchCollect`/`watchClose`: many idle watches on raw TLS
 * sockets (one connection each, as HTTP/1.1 clients hold them), or with
 * `http2Streams` as streams of shared HTTP/2 sessions (that many per session,
 * as client-go's informers share one connection), then the delivery delay of
 * each event. The watches stay open between calls, in this module, in named
 * groups (the soak times its direct and proxied watches apart, in the same
 * seconds and the same process).
 */
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import { Samples, summarize } from '../stats.js';
import { destroyAll } from './connect.js';
import { http2HeaderSource, http2Session } from './http2.js';
import type { WatchCollectResult, WatchGroupJob, WatchOpenJob, WatchOpenResult } from './jobs.js';
import { Watch, http2Watch, type OnEvent, type OnHead } from './watch-readers.js';

/** One group of watches: its connections, and the delays of its events since the last collect. */
interface Group {
  readonly watches: Set<Watch | ClientHttp2Stream>;
  readonly sessions: Set<ClientHttp2Session>;
  readonly delays: Samples;
  /** Watches that closed while nobody asked them to. */
  ended: number;
  closing: boolean;
}

const groups = new Map<string, Group>();

function groupOf(name = ''): Group {
  let group = groups.get(name);
  if (!group) groups.set(name, (group = { watches: new Set(), sessions: new Set(), delays: new Samples(), ended: 0, closing: false }));
  return group;
}

/** Counts a watch that closes before its group is closed (the server or the network ended it). */
function watchEnd(group: Group, watch: Watch | ClientHttp2Stream): void {
  (watch instanceof Watch ? watch.socket : watch).once('close', () => {
    if (!group.closing) group.ended++;
  });
}

/** How watch number `i` is opened: on a connection of its own, or as a stream of session floor(i / http2Streams). */
async function watchOpener(job: WatchOpenJob, watchSessions: Set<ClientHttp2Session>): Promise<(i: number, onHead: OnHead, onEvent: OnEvent) => Watch | ClientHttp2Stream> {
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
  const group = groupOf(job.group);
  const { watches } = group;
  const openOne = await watchOpener(job, group.sessions);
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
        if (ok) {
          opened++;
          watchEnd(group, watch!);
        } else {
          failed++;
          firstError ??= why;
          watches.delete(watch!);
        }
        next();
      };
      let watch: Watch | ClientHttp2Stream | undefined;
      try {
        watch = openOne(started++, onHead, (delay) => group.delays.push(delay));
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

/** The delays of a group's events since the last collect, how many of its watches are open, and how many ended early. */
export function watchCollect(job?: WatchGroupJob): WatchCollectResult {
  const { watches, delays, ended } = groupOf(job?.group);
  const result = { events: delays.length, open: watches.size, ended, delay: summarize(delays) };
  delays.clear();
  return result;
}

/** Closes a group's watches (every group's without one): HTTP/1.1 ones with their connections, HTTP/2 ones with their sessions. */
export async function watchClose(job?: WatchGroupJob): Promise<number> {
  const closing = job?.group === undefined ? [...groups.values()] : [groupOf(job.group)];
  let count = 0;
  const all: (Watch['socket'] | ClientHttp2Session)[] = [];
  for (const group of closing) {
    group.closing = true;
    count += group.watches.size;
    for (const w of group.watches) if (w instanceof Watch) all.push(w.socket);
    all.push(...group.sessions);
  }
  for (const [name, group] of groups) if (closing.includes(group)) groups.delete(name);
  await destroyAll(all);
  return count;
}
