/**
 * Small bounded JSON GETs from an identity provider (discovery, keys), over
 * the provider's agent (../idp.ts).
 */
import { request, type Dispatcher } from 'undici';

/** A discovery document or key set is a few KiB; refuse to buffer a runaway body. */
const MAX_BODY_BYTES = 512 * 1024;
/** The whole GET, connect to last byte; kube's client allows 30 s, a login should not wait that long. */
const REQUEST_TIMEOUT_MS = 10_000;

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
  const text = await boundedText(res.body, MAX_BODY_BYTES, `GET ${url}: response`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`GET ${url}: response is not JSON`);
  }
}

/** A response body as UTF-8 text, refused (and the body destroyed) past `maxBytes`. */
export async function boundedText(body: Dispatcher.ResponseData['body'], maxBytes: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      body.destroy();
      throw new Error(`${what} larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
