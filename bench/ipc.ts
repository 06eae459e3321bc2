/**
 * The message shapes between the harness and its child processes (the bench
 * upstream, the load generator, the forwarders): calls with an id and one
 * reply each, and events the child sends on its own (`ready`, `mark`).
 */

export interface CallMessage {
  readonly id: number;
  readonly method: string;
  readonly params: unknown;
}

export interface ReplyMessage {
  readonly id: number;
  readonly result?: unknown;
  readonly error?: string;
}

export interface EventMessage {
  readonly event: string;
  readonly data?: unknown;
}

export type Handler = (params: never) => unknown;

/** Child side: answers calls with `handlers`; exits when the harness goes away. */
export function serveCalls(handlers: Record<string, Handler>): void {
  process.on('message', (message: CallMessage) => {
    const handler = handlers[message.method];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown method ${message.method}`);
        return (handler as (params: unknown) => unknown)(message.params);
      })
      .then(
        (result) => send({ id: message.id, result }),
        (err: unknown) => send({ id: message.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  // The harness died or let go: nothing is left to do here.
  process.on('disconnect', () => process.exit(0));
}

/** Child side: an event for the harness. */
export function emitEvent(event: string, data?: unknown): void {
  send({ event, data });
}

function send(message: ReplyMessage | EventMessage): void {
  if (process.connected) process.send?.(message);
}
