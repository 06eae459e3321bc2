// A bearer token in the WebSocket subprotocol: browsers cannot set Authorization on a
// WebSocket, so kube-apiserver also reads `Sec-WebSocket-Protocol:
// base64url.bearer.authorization.k8s.io.<base64url(token), no padding>`
// (k8s.io/apiserver/pkg/authentication/request/websocket/protocol.go). On a WebSocket
// upgrade that entry authenticates like an Authorization bearer token (Authorization,
// when present, wins); it is taken out of the header before forwarding, the other
// protocols kept in order and the header dropped when none is left: the upstream, the
// client's 101 and the logs never see the token. Anywhere else it is no credential.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import type { SeenRequest } from '../../dev/upstream.js';
import { headerLines } from '../../dev/requestheader.js';
import { createLogger } from '../../src/observe/logger.js';
import { observe } from '../helpers/observe.js';
import { sendUpgrade, SPDY_LINES, websocketLines } from '../helpers/raw-upgrade.js';
import { startStack, untilReady } from '../helpers/stack.js';

const PREFIX = 'base64url.bearer.authorization.k8s.io.';
const bearerProtocol = (token: string) => PREFIX + Buffer.from(token).toString('base64url');
const EXEC = '/api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true&stdout=true';

/**
 * The protocols a request offered, across every Sec-WebSocket-Protocol line, in order
 * (a token entry shown without its token, so that a failing diff does not print it); null without the header.
 */
const offered = (rawHeaders: readonly string[]): string[] | null => {
  const lines = headerLines(rawHeaders).filter(([n]) => n.toLowerCase() === 'sec-websocket-protocol');
  const redact = (p: string) => (p.startsWith(PREFIX) ? `${PREFIX}<token>` : p);
  return lines.length ? lines.flatMap(([, v]) => v.split(',').map((p) => redact(p.trim()))) : null;
};

/** What the upstream made of a request: its user, the protocols it was offered, and whether any token entry reached it. */
const upstreamView = (seen: SeenRequest | undefined) =>
  seen && {
    user: seen.user?.username ?? null,
    offered: offered(seen.rawHeaders),
    tokenEntry: seen.rawHeaders.some((h) => h.toLowerCase().includes(PREFIX)),
  };

t.test('bearer token in the WebSocket subprotocol', async (t) => {
  const dir = t.testdir();
  const auditFile = join(dir, 'audit.log');
  const logFile = join(dir, 'proxy.log');
  const logger = createLogger('trace', logFile);
  const stack = await startStack(t, { logger, configure: (c) => ({ ...c, audit: { path: auditFile, format: 'combined' } }) });
  await untilReady(stack.proxy);
  const proxy = stack.proxy.url;
  const alice = await stack.mint({ email: 'alice@example.com', sub: 'alice' });
  const bob = await stack.mint({ email: 'bob@example.com', sub: 'bob' });
  /** Every token this file sends, to look for where it must not be. */
  const tokens = [alice, bob];

  /** A raw WebSocket upgrade offering `protocols` (plus `extra` lines): the answer, and what reached the upstream. */
  const upgrade = async (protocols: string[], extra: string[] = []) => {
    const before = stack.upstream.seen.length;
    const res = await sendUpgrade(t, proxy, stack.servingCA, 'GET', EXEC, [...websocketLines(protocols), ...extra]);
    return { status: res.status, protocol: res.header('sec-websocket-protocol') ?? null, upstream: upstreamView(stack.upstream.seen[before]) ?? null };
  };
  /** Switched as `user`, the upstream offered `upstreamOffered` (it picks the first), no token entry upstream. */
  const switched = (user: string, upstreamOffered: string[] | null) => ({
    status: 101,
    protocol: upstreamOffered?.[0] ?? null,
    upstream: { user, offered: upstreamOffered, tokenEntry: false },
  });
  const unauthorized = { status: 401, protocol: null, upstream: null };

  t.test('it authenticates an upgrade; the upstream and the 101 never see it', async (t) => {
    const res = await upgrade([bearerProtocol(alice), 'v5.channel.k8s.io']);
    t.same(res, switched('alice@example.com', ['v5.channel.k8s.io']), "switched as the token's user; only v5.channel.k8s.io upstream");
  });

  t.test('the other protocols keep their order, across header lines', async (t) => {
    const oneLine = await upgrade(['v5.channel.k8s.io', bearerProtocol(alice), 'v4.channel.k8s.io']);
    t.same(oneLine, switched('alice@example.com', ['v5.channel.k8s.io', 'v4.channel.k8s.io']), 'one line');
    const twoLines = await upgrade([], [`Sec-WebSocket-Protocol: v5.channel.k8s.io, ${bearerProtocol(alice)}`, 'Sec-WebSocket-Protocol: v4.channel.k8s.io']);
    t.same(twoLines, switched('alice@example.com', ['v5.channel.k8s.io', 'v4.channel.k8s.io']), 'two lines');
  });

  t.test('nothing left after the entry: the header is dropped', async (t) => {
    const res = await upgrade([bearerProtocol(bob)], [`Authorization: Bearer ${alice}`]);
    t.same(res, switched('alice@example.com', null), 'switched; no Sec-WebSocket-Protocol upstream or in the 101');
  });

  t.test('Authorization takes precedence, and the entry is removed all the same', async (t) => {
    const aliceHeader = `Authorization: Bearer ${alice}`;
    t.same(await upgrade([bearerProtocol(bob), 'v5.channel.k8s.io'], [aliceHeader]), switched('alice@example.com', ['v5.channel.k8s.io']), "another user's token");
    t.same(await upgrade([`${PREFIX}bm90LWEtdG9rZW4`, 'v5.channel.k8s.io'], [aliceHeader]), switched('alice@example.com', ['v5.channel.k8s.io']), 'an invalid entry');
    const badHeader = `Authorization: Bearer ${alice.slice(0, -4)}AAAA`;
    t.same(await upgrade([bearerProtocol(bob), 'v5.channel.k8s.io'], [badHeader]), unauthorized, 'a bad Authorization is not rescued by the entry');
  });

  t.test('an invalid token there is answered 401 Status before the upstream', async (t) => {
    const expired = await stack.mint({ exp: Math.floor(Date.now() / 1000) - 60 });
    // A valid token whose encoding needs padding, so that the padding is its only fault.
    let needsPadding = alice;
    for (let n = 1; Buffer.from(needsPadding).toString('base64url').length % 4 === 0; n++) {
      needsPadding = await stack.mint({ email: 'alice@example.com', sub: 'alice', nonce: 'n'.repeat(n) });
    }
    tokens.push(expired, needsPadding);
    const padded = Buffer.from(needsPadding).toString('base64');
    const v5 = 'v5.channel.k8s.io';
    for (const [what, protocols] of [
      ['a tampered signature', [bearerProtocol(`${alice.slice(0, -4)}AAAA`), v5]],
      ['an expired token', [bearerProtocol(expired), v5]],
      ['not a JWT', [bearerProtocol('not-a-jwt'), v5]],
      ['not base64url', [`${PREFIX}!!not*base64url!!`, v5]],
      ['padded base64url (kube decodes with RawURLEncoding)', [bearerProtocol(needsPadding) + padded.slice(padded.indexOf('=')), v5]],
      ['empty', [PREFIX, v5]],
      ['not UTF-8', [PREFIX + Buffer.from([0xff, 0xfe, 0xfd]).toString('base64url'), v5]],
      // As kube-apiserver: a token needs another protocol to echo back ("missing additional subprotocol"), and one token at most.
      ['the token alone', [bearerProtocol(alice)]],
      ['two tokens', [bearerProtocol(alice), bearerProtocol(alice), v5]],
    ] as const) {
      const seen = await observe(stack.upstream, () => sendUpgrade(t, proxy, stack.servingCA, 'GET', EXEC, websocketLines(protocols)));
      t.same(seen, { status: 401, reason: 'Unauthorized', upstreamReceived: [] }, what);
    }
  });

  t.test('outside a WebSocket upgrade the entry is no credential', async (t) => {
    const header = `Sec-WebSocket-Protocol: ${bearerProtocol(alice)}, v5.channel.k8s.io`;
    const spdy = await observe(stack.upstream, () => sendUpgrade(t, proxy, stack.servingCA, 'POST', EXEC, [...SPDY_LINES, header]));
    t.same(spdy, { status: 401, reason: 'Unauthorized', upstreamReceived: [] }, 'a SPDY upgrade');
    const plain = await observe(stack.upstream, async () => {
      const res = await stack.fetch('/api/v1/namespaces/default/pods', { headers: { 'sec-websocket-protocol': `${bearerProtocol(alice)}, v5.channel.k8s.io` } });
      return { status: res.statusCode, body: await res.body.text() };
    });
    t.same(plain, { status: 401, reason: 'Unauthorized', upstreamReceived: [] }, 'a plain GET');
  });

  t.test('a real ws client, end to end', async (t) => {
    const before = stack.upstream.seen.length;
    const ws = new WebSocket(`${proxy.replace('https:', 'wss:')}${EXEC}`, [bearerProtocol(alice), 'v5.channel.k8s.io'], { ca: stack.servingCA });
    t.teardown(() => ws.terminate());
    const opened = await Promise.race([
      once(ws, 'open').then(() => 'open'),
      once(ws, 'unexpected-response').then(([, res]) => `refused ${(res as { statusCode: number }).statusCode}`),
    ]).catch((err: Error) => `error ${err.message}`);
    t.equal(opened, 'open', 'opened');
    t.equal(ws.protocol, 'v5.channel.k8s.io', 'the 101 comes back with the real protocol');
    if (opened === 'open') {
      ws.send('ping');
      const [echo] = await once(ws, 'message');
      t.equal(String(echo), 'ping', 'bytes flow through the tunnel');
      ws.close();
      await once(ws, 'close');
    }
    t.same(upstreamView(stack.upstream.seen[before]), { user: 'alice@example.com', offered: ['v5.channel.k8s.io'], tokenEntry: false }, 'what the upstream got');
  });

  t.test('no log or audit line holds the token', async (t) => {
    await stack.proxy.close(); // flushes the audit stream
    logger.flush();
    await new Promise((r) => setTimeout(r, 200));
    const audit = await readFile(auditFile, 'utf8');
    const logs = audit + (await readFile(logFile, 'utf8'));
    t.ok(audit.includes('/pods/web/exec'), 'the upgrades were audited (the scan is not vacuous)');
    for (const token of tokens) {
      t.notOk(logs.includes(token), 'no token');
      t.notOk(logs.includes(Buffer.from(token).toString('base64url')), 'no encoded token');
    }
    t.notOk(logs.includes(PREFIX), 'no subprotocol entry');
    t.notMatch(logs, /eyJ[\w-]{10,}\.[\w-]{10,}\./, 'nothing shaped like a JWT');
  });
});
