/**
 * A TokenReview webhook the test controls: a real HTTPS server (its own CA,
 * made per run) that reads each review, counts it, and answers what the test
 * says, or never answers. Also writes the kubeconfig kube and the proxy read
 * to find it.
 */
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createCA, issueCertificate } from '../../dev/pki.js';

/** An answer: a JSON body (status 200 unless given), `hang` to never answer, or `destroy` to cut the connection. */
export type WebhookReply = { readonly status?: number; readonly body: unknown } | 'hang' | 'destroy';

export interface TokenWebhook {
  readonly url: string;
  readonly caPem: string;
  /** Tokens reviewed, in order. */
  readonly tokens: string[];
  /** Authorization headers the webhook was called with. */
  readonly authorizations: (string | undefined)[];
  answer: (token: string) => WebhookReply;
  /** Writes a kubeconfig naming this webhook into `dir`; returns its path. */
  kubeconfig(dir: string, user?: Record<string, unknown>): string;
  close(): Promise<void>;
}

/** A TokenReview answer body. */
export function review(status: Record<string, unknown>): unknown {
  return { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status };
}

export async function startTokenWebhook(answer: (token: string) => WebhookReply, path = '/authenticate'): Promise<TokenWebhook> {
  const ca = await createCA('token-webhook-ca');
  const leaf = await issueCertificate({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, commonName: 'webhook', serverAuth: true, ips: ['127.0.0.1'], dnsNames: ['localhost'] });
  const hung: ServerResponse[] = [];
  const hook: Partial<TokenWebhook> & { answer: (token: string) => WebhookReply } = { answer, tokens: [], authorizations: [], caPem: ca.certPem };
  const server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let token = '';
      try {
        token = String((JSON.parse(Buffer.concat(chunks).toString()) as { spec?: { token?: string } }).spec?.token ?? '');
      } catch {
        /* not a review: answered like any other */
      }
      hook.tokens!.push(token);
      hook.authorizations!.push(req.headers.authorization);
      const reply = hook.answer(token);
      if (reply === 'hang') return void hung.push(res);
      if (reply === 'destroy') return void req.socket.destroy();
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json' });
      res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  return Object.assign(hook, {
    url,
    kubeconfig(dir: string, user: Record<string, unknown> = {}) {
      const file = join(dir, `webhook-${Math.random().toString(36).slice(2)}.kubeconfig`);
      const doc = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'webhook', cluster: { server: url, 'certificate-authority-data': Buffer.from(ca.certPem).toString('base64') } }],
        users: [{ name: 'proxy', user }],
        contexts: [{ name: 'webhook', context: { cluster: 'webhook', user: 'proxy' } }],
        'current-context': 'webhook',
      };
      writeFileSync(file, JSON.stringify(doc));
      return file;
    },
    async close() {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  }) as TokenWebhook;
}
