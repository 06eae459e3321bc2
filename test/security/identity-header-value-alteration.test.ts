// Attack class: an identity altered on its way through the request headers
// (no public advisory; kube-front-proxy issue 9).
//
// kube-apiserver reads the proxy's X-Remote-* lines with Go's net/http:
// textproto trims spaces and tabs at both ends of every value and answers 400
// for any other control byte; the requestheader authenticator skips empty
// user, uid and group values, lower-cases each extra key and then
// path-unescapes it. A user name " admin@example.com" or a group
// "system:masters " from an identity provider would arrive as another,
// possibly privileged, principal. The rule under test: every value kind
// (user, uid, group, extra key, extra value) either arrives byte for byte or
// the proxy refuses the request with 403 IDENTITY_NOT_REPRESENTABLE, before
// anything reaches the API server.
//
// Each case is played two ways, against the dev upstream (which imitates
// kube's parsing) and against the real kube-apiserver:
// - end to end, with a token whose claim carries the value (user, uid, group, jti);
// - the proxy's header lines for an identity written straight to the upstream
//   with the front-proxy certificate, which also reaches the extra keys no
//   token claim can choose.
import { readFile } from 'node:fs/promises';
import { decodeJwt } from 'jose';
import t, { type Test } from 'tap';
import { Agent, request } from 'undici';
import type { Identity } from '../../src/request/identity.js';
import { mapClaims } from '../../src/authn/jwt/claims.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { headerLines } from '../../dev/requestheader.js';
import { proxyErrors } from '../../src/request/errors.js';
import { identityHeaderLines } from '../../src/proxy/identity-headers.js';
import { startStack, untilReady, type Stack } from '../helpers/stack.js';
import { startKube, startProxiedStack } from '../kube/helpers/kube-stack.js';

/** Where a value sits: the four kinds of identity value, an extra key, and the jti claim that becomes the `credential-id` extra value `JTI=<jti>`. */
type Kind = 'user' | 'uid' | 'group' | 'extra key' | 'extra value' | 'jti';

/** Kinds whose value is a header value; an extra key travels percent-encoded in the header name. */
const VALUE_KINDS: readonly Kind[] = ['user', 'uid', 'group', 'extra value', 'jti'];
/** Leading whitespace is inside the value once `JTI=` is in front of it. */
const LEADING_KINDS: readonly Kind[] = ['user', 'uid', 'group', 'extra value'];
const ALL_KINDS: readonly Kind[] = ['user', 'uid', 'group', 'extra key', 'extra value', 'jti'];

interface Case {
  readonly name: string;
  readonly value: string;
  /** The kinds where the proxy must refuse this value; everywhere else it must arrive byte for byte. */
  readonly refused: readonly Kind[];
}

const CASES: readonly Case[] = [
  { name: 'leading space', value: ' admin@example.com', refused: LEADING_KINDS },
  { name: 'trailing space', value: 'system:masters ', refused: VALUE_KINDS },
  { name: 'leading tab', value: '\tadmin', refused: LEADING_KINDS },
  { name: 'trailing tab', value: 'system:masters\t', refused: VALUE_KINDS },
  { name: 'only spaces', value: '   ', refused: VALUE_KINDS },
  { name: 'inner tab', value: 'a\tb', refused: [] },
  { name: 'inner spaces', value: 'a  b   c', refused: [] },
  { name: 'NUL', value: 'a\u0000b', refused: VALUE_KINDS },
  { name: 'CR', value: 'a\rb', refused: VALUE_KINDS },
  { name: 'LF', value: 'a\nb', refused: VALUE_KINDS },
  { name: 'CRLF header injection', value: 'eve\r\nX-Remote-Group: system:masters', refused: VALUE_KINDS },
  { name: 'DEL', value: 'a\u007fb', refused: VALUE_KINDS },
  { name: 'ESC', value: 'a\u001b[31m', refused: VALUE_KINDS },
  { name: 'non-ASCII', value: 'zoë ñandú 日本 🚀', refused: [] },
  // Go trims the bytes SP and HTAB only; U+00A0 and U+0085 are two UTF-8 bytes each, both >= 0x80.
  { name: 'non-ASCII space and C1 control at the ends', value: '\u00a0nbsp\u0085', refused: [] },
  // Buffer.from(s, 'utf8') writes a lone surrogate as U+FFFD: another string.
  { name: 'lone high surrogate', value: 'a\ud800b', refused: ALL_KINDS },
  { name: 'lone low surrogate', value: 'x\udc00', refused: ALL_KINDS },
  { name: 'percent signs', value: 'a%2Fb%zz%', refused: [] },
  // kube-apiserver lower-cases an extra key before unescaping it.
  { name: 'upper case', value: 'Team.Example.COM/Owner', refused: [] },
  { name: 'comma', value: 'a,b', refused: [] },
  // kube skips an empty user, uid or group value; an empty uid is no uid, an empty jti no credential id.
  { name: 'empty', value: '', refused: ['user', 'group'] },
];

/** A value for a test name: JSON, with DEL and C1 controls escaped too. */
const show = (value: string) => JSON.stringify(value).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** The Kubernetes user.Info the proxy means to assert, as a SelfSubjectReview shows it (uid and extra omitted when empty). */
function userInfo(identity: Identity, addedGroups: readonly string[]): Record<string, unknown> {
  const groups = [...identity.groups, ...addedGroups];
  return {
    username: identity.username,
    ...(identity.uid ? { uid: identity.uid } : {}),
    ...(groups.length ? { groups } : {}),
    ...(Object.keys(identity.extra).length ? { extra: identity.extra } : {}),
  };
}

/** The proxy refused the request with 403 IDENTITY_NOT_REPRESENTABLE (or would not write the header lines). */
const REFUSED = 'refused';
/** What the upstream answered a SelfSubjectReview with: the user it saw, or its error. */
const arrived = (status: number, body: any) => ({ status, userInfo: body?.status?.userInfo ?? body });

const REVIEW = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
const REVIEW_BODY = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });

/** A proxy whose groups claim has no prefix, so a claim can put whitespace at a group's start. */
const unprefixedGroups = (c: ConfigInput): ConfigInput => {
  const [jwt, ...rest] = c.authentication!.jwt!;
  return { ...c, authentication: { ...c.authentication, jwt: [{ ...jwt, claimMappings: { ...jwt.claimMappings, groups: { claim: 'groups', prefix: '' } } }, ...rest] } };
};

interface Target {
  readonly stack: Stack;
  /** Groups the upstream adds to every authenticated user. */
  readonly addedGroups: readonly string[];
  /** Where the upstream listens, and the CA file that verifies it. */
  readonly url: string;
  readonly caFile: string;
  /** The request ids among `ids` that reached the upstream. */
  reached(ids: readonly string[]): Promise<string[]>;
}

/** One identity value in its place, over a plain base identity. */
function identityWith(kind: Exclude<Kind, 'jti'>, value: string): Identity {
  const base: Identity = { username: 'probe@example.com', uid: 'probe-uid', groups: ['probe-group'], extra: { 'probe.example.com/key': ['probe-value'] }, authMethod: 'jwt' };
  switch (kind) {
    case 'user':
      return { ...base, username: value };
    case 'uid':
      return { ...base, uid: value };
    case 'group':
      return { ...base, groups: [value] };
    case 'extra key':
      return { ...base, extra: { [value]: ['probe-value'] } };
    case 'extra value':
      return { ...base, extra: { 'probe.example.com/key': [value] } };
  }
}

/** The claims that put `value` where `kind` says, through the stack's claim mappings. */
const CLAIM: Partial<Record<Kind, string>> = { user: 'email', uid: 'sub', jti: 'jti' };
const claimsWith = (kind: Kind, value: string) => (kind === 'group' ? { groups: [value] } : { [CLAIM[kind]!]: value });

async function playCases(t: Test, target: Target): Promise<void> {
  const { stack } = target;
  const rules = stack.config.authentication.jwt[0];
  const frontProxy = new Agent({
    connect: {
      ca: await readFile(target.caFile, 'utf8'),
      cert: await readFile(stack.pki.frontProxyClientCert, 'utf8'),
      key: await readFile(stack.pki.frontProxyClientKey, 'utf8'),
    },
  });
  t.teardown(() => frontProxy.close());

  /** What the proxy must do with `identity`: refuse it, or have the upstream report it exactly. */
  const expected = (c: Case, kind: Kind, identity: Identity) => (c.refused.includes(kind) ? REFUSED : arrived(201, { status: { userInfo: userInfo(identity, target.addedGroups) } }));

  t.test('end to end: a token whose claim carries the value', async (t) => {
    const refusedIds: string[] = [];
    for (const c of CASES) {
      for (const kind of ['user', 'uid', 'group', 'jti'] as const) {
        const label = `${c.name} in ${kind}: ${show(c.value)}`;
        const token = await stack.mint(claimsWith(kind, c.value));
        const mapped = mapClaims(decodeJwt(token), rules);
        const res = await stack.fetch(REVIEW, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: REVIEW_BODY });
        const body = (await res.body.json()) as any;
        if (mapped.kind !== 'authenticated') {
          // Not an identity at all (an empty user name claim): the proxy's authenticator refuses it first.
          t.equal(res.statusCode, 401, `${label}: not authenticated`);
          continue;
        }
        const refused = res.statusCode === 403 && body.message === proxyErrors.IDENTITY_NOT_REPRESENTABLE.message;
        if (refused) refusedIds.push(res.headers['audit-id'] as string);
        t.strictSame(refused ? REFUSED : arrived(res.statusCode, body), expected(c, kind, mapped.identity), label);
      }
    }
    t.strictSame(await target.reached(refusedIds), [], 'no refused request reached the upstream');
  });

  t.test("the proxy's header lines for an identity, straight to the upstream", async (t) => {
    for (const c of CASES) {
      for (const kind of ['user', 'uid', 'group', 'extra key', 'extra value'] as const) {
        const label = `${c.name} in ${kind}: ${show(c.value)}`;
        const identity = identityWith(kind, c.value);
        const lines = identityHeaderLines(identity, stack.config.upstream!.identityHeaders);
        if (!lines.ok) {
          t.strictSame(REFUSED, expected(c, kind, identity), label);
          continue;
        }
        const res = await request(`${target.url}${REVIEW}`, {
          dispatcher: frontProxy,
          method: 'POST',
          headers: ['Content-Type', 'application/json', ...lines.lines],
          body: REVIEW_BODY,
        });
        t.strictSame(arrived(res.statusCode, await res.body.json()), expected(c, kind, identity), label);
      }
    }
  });
}

t.test("the dev upstream reads header values as Go's net/textproto does", async (t) => {
  // Called directly, not through Node's HTTP parser (which trims the same way), so the imitation stands on its own.
  const raw = (value: string) => headerLines(['X-Remote-User', Buffer.from(value, 'utf8').toString('latin1')])[0][1];
  t.equal(raw(' \tadmin@example.com\t '), 'admin@example.com', 'spaces and tabs trimmed at both ends');
  t.equal(raw('a\t b'), 'a\t b', 'kept inside');
  t.equal(raw('\u00a0a\u0085'), '\u00a0a\u0085', 'non-ASCII spaces are not trimmed');
});

t.test('against the dev upstream', async (t) => {
  const stack = await startStack(t, { configure: unprefixedGroups });
  await untilReady(stack.proxy);
  await playCases(t, {
    stack,
    addedGroups: [],
    url: stack.upstream.url,
    caFile: stack.pki.upstreamCA,
    reached: async (ids) => stack.upstream.seen.flatMap((s) => (s.auditId && ids.includes(s.auditId) ? [s.auditId] : [])),
  });
});

t.test('against the real kube-apiserver', async (t) => {
  const cluster = await startKube(t);
  if (!cluster) return;
  const stack = await startProxiedStack(t, cluster, { configure: unprefixedGroups });
  await playCases(t, {
    stack,
    addedGroups: ['system:authenticated'],
    url: cluster.url,
    caFile: cluster.caFile,
    async reached(ids) {
      // A request that does reach the apiserver, so everything sent before it is in its audit log.
      const marker = await stack.fetch('/version', { headers: { authorization: `Bearer ${await stack.mint()}` } });
      await marker.body.text();
      const markerId = marker.headers['audit-id'] as string;
      await cluster.auditEvent((e) => e.auditID === markerId);
      return (await cluster.auditEvents()).filter((e) => ids.includes(e.auditID)).map((e) => e.auditID);
    },
  });
});
