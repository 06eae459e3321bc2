/**
 * Scenario 4: idle watches. As many watches as the open-file limit allows are
 * opened through each server and left idle: its RSS growth per watch. Then the
 * upstream sends events at a fixed rate across them: the delivery delay of
 * each. Over HTTP/1.1 every watch is a connection; over HTTP/2 a stream of a
 * shared connection.
 */
import { openFileLimit } from '../children.js';
import { nginxVersion } from '../nginx.js';
import { HTTP2_MAX_STREAMS, type BenchOptions } from '../options.js';
import { DIRECT, KFP, KFP_H2, NGINX, NGINX_H2, newFigure } from '../results.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { startProxy } from '../servers/kube-front-proxy.js';
import { startNginx } from '../servers/nginx.js';
import type { Server } from '../servers/server.js';
import { CurveWindows, eachWindow } from '../windows.js';
import { watchWindow, type WatchConfig, type WatchFigures } from './watch-window.js';

export const idleWatches: Scenario = {
  id: 4,
  // A fresh proxy and nginx per window (memory freed by an earlier window would hide growth); the smoke run reuses the shared ones.
  needs: (options) => (options.freshWatchServers ? [] : ['kfp', 'nginx']),
  async run(ctx) {
    const { options } = ctx;
    const notes: string[] = [];
    const count = watchCount(options, notes);
    options.log(`scenario 4: ${count} idle watches, then ${options.watchEventRate} events/s across them`);
    const figures: WatchFigures = {
      rss: newFigure({ id: 's4-rss', scenario: 4, title: `RSS growth per idle watch (${count} watches)`, unit: 'KiB', higherIsBetter: false, compare: 'ratio' }),
      d50: newFigure({ id: 's4-p50', scenario: 4, title: `event delivery delay p50, ${options.watchEventRate} events/s across ${count} watches`, unit: 'ms', higherIsBetter: false, compare: 'difference' }),
      d99: newFigure({ id: 's4-p99', scenario: 4, title: `event delivery delay p99, ${options.watchEventRate} events/s across ${count} watches`, unit: 'ms', higherIsBetter: false, compare: 'difference' }),
      curves: new CurveWindows(),
    };
    if (options.http2Streams > HTTP2_MAX_STREAMS) throw new Error(`http2Streams ${options.http2Streams}: the servers allow ${HTTP2_MAX_STREAMS} streams per HTTP/2 connection`);
    const sessions = Math.ceil(count / options.http2Streams);
    notes.push(
      `Scenario 4 (h2): the same ${count} watches as streams of ${sessions} HTTP/2 connection(s), ${Math.min(count, options.http2Streams)} per connection, as client-go's informers share one; ` +
        'upstream, each watch is still a connection of its own (HTTP/1.1).',
    );
    const configs = watchConfigs(ctx);
    if (ctx.nginxH2) {
      notes.push(
        `Scenario 4, nginx (h2): ${nginxVersion() ?? 'nginx'} over HTTP/2 holds a streamed response's head back until its first body bytes (over HTTP/1.1 it sends it at once; curl --http2 sees the same), ` +
          'so a watch with no event yet never gets its response head, and a client-go Watch() through it would block until the first event or bookmark. ' +
          'The load generator counts those watches open once their requests are sent and the upstream holds every one; the delay of each event is measured as for the others.',
      );
    }
    const started = await startWatchServers(ctx, configs);
    await eachWindow(options.watchRounds, configs, async (config, round) => {
      const server = config.start ? started.get(`${config.name} ${round}`)! : ctx.servers.direct;
      await watchWindow(ctx, { config, server, round, count, sessions }, figures);
    });
    return { figures: [figures.rss, figures.d50, figures.d99], curves: { s4: figures.curves.medians() }, notes };
  },
};

/**
 * The watches wanted, as far as the open-file limit allows (a note says when it did not);
 * `reserve` descriptors are kept for everything else the scenario opens. A proxy over an
 * HTTP/1.1 upstream (nginx; kube-front-proxy with --upstream-http2 off) holds two descriptors
 * per watch, client and upstream; kube-front-proxy over h2 holds one, its watches sharing
 * a few upstream connections as streams.
 */
export function watchCount(options: BenchOptions, notes: string[], scenario = 4, reserve = 200, perWatch: 1 | 2 = 2): number {
  const limit = openFileLimit();
  const feasible = Math.floor((limit.hard - reserve) / perWatch);
  const count = Math.min(options.watches, feasible);
  if (count < options.watches) {
    notes.push(
      `Scenario ${scenario} used ${count} watches, not ${options.watches}: the hard open-file limit here is ${limit.hard} and cannot be raised without privileges, ` +
        (perWatch === 2
          ? 'and a proxy over an HTTP/1.1 upstream holds two descriptors per watch, one to the client and one to the upstream.'
          : 'and the proxy holds a descriptor per watch, to its client.'),
    );
  }
  return count;
}

function watchConfigs(ctx: ScenarioContext): WatchConfig[] {
  const { options, servers } = ctx;
  const fresh = options.freshWatchServers;
  const proxy = (name: string) => (round: number) => (fresh ? servers.fresh((env) => startProxy(env, `${name} watches ${round + 1}`, {})) : servers.get('kfp'));
  const nginx = (prefix: string) => (round: number) => (fresh ? servers.fresh((env) => startNginx(env, `${prefix}-watches-${round + 1}`)) : servers.get('nginx'));
  return [
    { name: DIRECT },
    { name: KFP, start: proxy(KFP) },
    { name: KFP_H2, h2: true, start: proxy(KFP_H2) },
    { name: NGINX, start: nginx('nginx') },
    ...(ctx.nginxH2 ? [{ name: NGINX_H2, h2: true, headWithFirstEvent: true, start: nginx('nginx-h2') }] : []),
  ];
}

/** Every window's server, by "<config> <round>", all started at once up front. */
async function startWatchServers(ctx: ScenarioContext, configs: readonly WatchConfig[]): Promise<Map<string, Server>> {
  const starting: [string, Promise<Server>][] = [];
  for (let round = 0; round < ctx.options.watchRounds; round++) {
    for (const config of configs) if (config.start) starting.push([`${config.name} ${round}`, config.start(round)]);
  }
  const servers = await Promise.all(starting.map(([, server]) => server));
  return new Map(starting.map(([key], i) => [key, servers[i]]));
}
