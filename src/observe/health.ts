/**
 * The plain-HTTP operations endpoint: /healthz (the process is alive),
 * /readyz (certificates loaded and every issuer discovered) and /metrics.
 */
import { createServer, type Server } from 'node:http';

export interface Readiness {
  /** Names of what is not ready yet; empty when ready. */
  notReady(): string[];
}

/** Where /metrics comes from: one registry, or the cluster aggregate. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export function createHealthServer(readiness: Readiness, registry: MetricsSource): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/healthz' || path === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const waiting = readiness.notReady();
      res
        .writeHead(waiting.length ? 503 : 200, { 'content-type': 'text/plain' })
        .end(waiting.length ? `not ready: ${waiting.join(', ')}\n` : 'ok\n');
    } else if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
}
