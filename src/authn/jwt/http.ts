/**
 * HTTP to an identity provider: one undici Agent per issuer, trusting the
 * issuer's own CA when one is configured, and small bounded JSON GETs.
 */
import { readFile } from 'node:fs/promises';
import { Agent, request, type Dispatcher } from 'undici';
import type { JwtAuthenticatorConfig } from '../../config/schema.js';

/** A discovery document or key set is a few KiB; refuse to buffer a runaway body. */
const MAX_BODY_BYTES = 512 * 1024;
const CONNECT_TIMEOUT_MS = 5_000;
/** The whole GET, connect to last byte; kube's client allows 30 s, a login should not wait that long. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * An Agent for one issuer. With `certificateAuthority(File)` set, only that CA
 * is trusted (as kube-apiserver does); otherwise Node's default CA store.
 */
export async function issuerAgent(issuer: JwtAuthenticatorConfig['issuer']): Promise<Agent> {
  const ca = issuer.certificateAuthority ?? (issuer.certificateAuthorityFile && (await readFile(issuer.certificateAuthorityFile, 'utf8')));
  return new Agent({
    connect: { timeout: CONNECT_TIMEOUT_MS, ...(ca ? { ca } : {}) },
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
}

/**
 * GETs `url` and parses it as JSON. Anything but a 200 with a body under
 * 512 KiB is an error; redirects are not followed.
 *
 * @param signal aborts the request (e.g. on shutdown); a 10 s timeout applies on top.
 */
export async function getJson(url: string, dispatcher: Dispatcher, signal: AbortSignal): Promise<unknown> {
  const res = await request(url, {
    dispatcher,
    headers: { accept: 'application/json' },
    signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
  });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`GET ${url}: HTTP ${res.statusCode}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      res.body.destroy();
      throw new Error(`GET ${url}: response larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new Error(`GET ${url}: response is not JSON`);
  }
}
