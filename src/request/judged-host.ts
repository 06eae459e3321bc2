/**
 * The host a request is judged for: its own Host, or for a forward-auth check
 * the original URL's host, which the ingress holds and the check is about. A
 * session bound to one host (login/session-authenticator.ts) is held to it.
 */
import { authority, type ClientRequest } from './client.js';

const judged = new WeakMap<ClientRequest, string | undefined>();

/** Forward-auth: this check is about a request to `host`. */
export function judgeFor(req: ClientRequest, host: string | undefined): void {
  judged.set(req, host);
}

export function judgedHost(req: ClientRequest): string | undefined {
  return judged.has(req) ? judged.get(req) : authority(req);
}
