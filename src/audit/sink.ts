/**
 * The audit stream: one line per finished request, written off the hot path
 * by pino's SonicBoom (asynchronous, batched), and flushed on shutdown.
 */
import { pino } from 'pino';
import type { Config } from '../config/schema.js';
import type { RequestContext } from '../request/context.js';
import { auditRecord, formatCombined, formatJson } from './format.js';

export interface AuditSink {
  record(ctx: RequestContext): void;
  close(): Promise<void>;
}

export function createAuditSink(config: Config['audit']): AuditSink {
  // Lines are batched into writes of 4 KiB (one write per request was a tenth of the
  // proxy's CPU time under load); the timer bounds how long a line waits when traffic is low.
  const dest = pino.destination({ dest: config.path === '-' ? 1 : config.path, sync: false, minLength: 4096 });
  let failed = false;
  const flusher = setInterval(() => {
    if (!failed) dest.flush();
  }, 1000).unref();
  // A failing audit destination (a full disk, a closed stdout) must be loud, not crash the proxy.
  dest.on('error', (err: Error) => {
    failed = true;
    process.stderr.write(`kube-front-proxy: audit log write failed: ${err.message}\n`);
  });
  const format = config.format === 'json' ? formatJson : formatCombined;
  let closed = false;
  return {
    record(ctx) {
      // SonicBoom throws once ended; a line after close is a shutdown-order bug, never a crash.
      if (closed) return void process.stderr.write('kube-front-proxy: bug: audit line after the audit log closed\n');
      dest.write(`${format(auditRecord(ctx))}\n`);
    },
    async close() {
      closed = true;
      clearInterval(flusher);
      dest.flushSync();
      if (config.path !== '-') dest.end();
    },
  };
}
