/**
 * The audit stream: one line per finished request, written off the hot path
 * by pino's SonicBoom (asynchronous, batched), and flushed on shutdown.
 */
import { pino } from 'pino';
import type { Config } from '../config/schema.js';
import type { RequestContext } from '../proxy/context.js';
import { auditRecord, formatCombined, formatJson } from './format.js';

export interface AuditSink {
  record(ctx: RequestContext): void;
  close(): Promise<void>;
}

export function createAuditSink(config: Config['audit']): AuditSink {
  const dest = pino.destination({ dest: config.path === '-' ? 1 : config.path, sync: false });
  const format = config.format === 'json' ? formatJson : formatCombined;
  return {
    record(ctx) {
      dest.write(`${format(auditRecord(ctx))}\n`);
    },
    async close() {
      dest.flushSync();
      if (config.path !== '-') dest.end();
    },
  };
}
