/**
 * The servers scenarios share, each started once on first use (several at
 * once before the first scenario: each takes a second or more to load), and
 * the ones a scenario starts for itself; every one is stopped at the end of
 * the run.
 */
import { DIRECT, KFP, KFP_UPSTREAM_H1 } from '../results.js';
import type { Teardown } from '../teardown.js';
import { startHttpProxy } from './http-proxy.js';
import { startNoAuthProxy, startProxy } from './kube-front-proxy.js';
import { startNginx } from './nginx.js';
import { startOauth2Proxy } from './oauth2-proxy.js';
import type { Server, ServerEnv } from './server.js';

/** The shared servers, by what scenarios call them. */
const SHARED = {
  kfp: (env: ServerEnv) => startProxy(env, KFP, {}),
  kfpNoCache: (env: ServerEnv) => startProxy(env, `${KFP} cache off`, { cacheOff: true }),
  kfpCel: (env: ServerEnv) => startProxy(env, `${KFP} CEL`, { cel: true }),
  kfpCelNoCache: (env: ServerEnv) => startProxy(env, `${KFP} CEL cache off`, { cel: true, cacheOff: true }),
  kfpNoAuth: startNoAuthProxy,
  kfpUpstreamH1: (env: ServerEnv) => startProxy(env, KFP_UPSTREAM_H1, { upstreamHttp2: 'off' }),
  nginx: (env: ServerEnv) => startNginx(env),
  forwarder: startHttpProxy,
  oauth2Proxy: startOauth2Proxy,
} satisfies Record<string, (env: ServerEnv) => Promise<Server>>;

export type SharedServer = keyof typeof SHARED;

export class ServerPool {
  /** No server at all: the load generator talks to the upstream itself. */
  readonly direct: Server;
  readonly #shared = new Map<SharedServer, Promise<Server>>();

  constructor(
    readonly env: ServerEnv,
    private readonly teardown: Teardown,
  ) {
    this.direct = { name: DIRECT, url: env.upstreamURL, pids: () => [], stop: async () => undefined };
  }

  /** A shared server: started on first use. */
  get(which: SharedServer): Promise<Server> {
    let server = this.#shared.get(which);
    if (!server) this.#shared.set(which, (server = this.teardown.track(SHARED[which](this.env))));
    return server;
  }

  /** Starts these shared servers together. */
  async startAll(which: readonly SharedServer[]): Promise<void> {
    await Promise.all([...new Set(which)].map((w) => this.get(w)));
  }

  /** A server of the caller's own (it may stop it early; stopping twice does nothing). */
  fresh(start: (env: ServerEnv) => Promise<Server>): Promise<Server> {
    return this.teardown.track(start(this.env));
  }

  /** direct, kube-front-proxy and nginx: what most scenarios compare. */
  async compared(): Promise<Server[]> {
    return [this.direct, await this.get('kfp'), await this.get('nginx')];
  }
}
