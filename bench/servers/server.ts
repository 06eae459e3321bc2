/**
 * What the harness knows of a server under test, what every server is started
 * with, and the checks they share.
 */
import { readFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { Agent, request } from 'undici';
import { processTree, type Child } from '../children.js';
import type { DevIssuer } from '../../dev/issuer.js';
import type { DevPki } from '../../dev/pki.js';
import { POD_PATH } from '../fixtures.js';

/** A server under test: where clients connect, and which processes to measure. */
export interface Server {
  readonly name: string;
  readonly url: string;
  /** Worker processes (kube-front-proxy's cluster); 1 when it runs as one process. */
  readonly workers?: number;
  /** The main (primary) process. */
  readonly pid?: number;
  pids(): number[];
  stop(): Promise<void>;
}

/** What every server is started with. */
export interface ServerEnv {
  /** The run's temporary folder: configurations, audit logs, nginx prefixes. */
  readonly work: string;
  /** Where each child's stdout and stderr go. */
  readonly logs: string;
  readonly pki: DevPki;
  readonly issuer: DevIssuer;
  readonly upstreamURL: string;
  /** listen.workers for kube-front-proxy; unset: its own default. */
  readonly proxyWorkers?: number;
  readonly log: (line: string) => void;
  /** Proxies that had to be killed: they did not exit within 5 s of SIGTERM. */
  readonly stuck: Set<string>;
}

/** The identity the proxy sets from the bench token: what direct requests, nginx and http-proxy send instead. */
export const IDENTITY_HEADERS = [
  'X-Remote-User', 'bench@example.com',
  'X-Remote-Uid', 'bench',
  'X-Remote-Group', 'oidc:developers',
  'X-Remote-Group', 'oidc:infrastructure',
];

/** A server's processes to measure: the child and its descendants, none once it has exited. */
export const treeOf = (child: Child) => (): number[] => (child.alive ? processTree(child.pid) : []);

/** A server's name as a file name. */
export const slug = (name: string): string => name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');

/** The status of one GET (without a token unless `headers` has one), to check what a server let through. */
export async function probe(url: string, caFile: string, headers: Record<string, string> = {}): Promise<number> {
  const agent = new Agent({ connect: { ca: readFileSync(caFile) } });
  try {
    const res = await request(`${url}${POD_PATH}`, { dispatcher: agent, headers });
    await res.body.dump();
    return res.statusCode;
  } finally {
    await agent.close();
  }
}

/** A port free on 127.0.0.1 now, for a server that cannot listen on port 0 and tell us which it got. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on this port of 127.0.0.1. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
