// Attack class: a refused upgrade turned into a raw pipe (CVE-2018-1002105,
// kubernetes/kubernetes#71411, one layer out).
//
// The proxy's connection to kube-apiserver is trusted for X-Remote-User and
// X-Remote-Group. If the proxy pipes a client's bytes into that connection
// before the upstream has switched protocols, then after a refused upgrade
// (403 without pods/exec, 404 for a missing pod) the upstream reads the
// client's next bytes as a new request on the trusted connection, and the
// client can name itself system:masters. Kube-apiserver (Go) keeps a refused
// upgrade's connection open for the next request, and so does the dev upstream.
//
// Each case plays the attacker twice: the smuggled request written after the
// refusal has arrived, and pipelined in the same write as the upgrade head.
import t, { type Test } from 'tap';
import { MISSING_POD } from '../../dev/upstream.js';
import { countResponses, openRaw, requestHead } from '../helpers/raw-tls.js';
import { startStack, untilReady, type Stack } from '../helpers/stack.js';
import { startKube, startProxiedStack } from '../kube/helpers/kube-stack.js';

/** The request an attacker wants the upstream to read on the proxy's trusted connection. */
const smuggled = (host: string) =>
  requestHead('GET', '/api/v1/namespaces/kube-system/secrets', host, ['X-Remote-User: attacker', 'X-Remote-Group: system:masters']);

const UPGRADES = {
  'SPDY/3.1': ['Connection: Upgrade', 'Upgrade: SPDY/3.1', 'X-Stream-Protocol-Version: v4.channel.k8s.io'],
  websocket: ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol: v5.channel.k8s.io'],
} as const;

type Timing = 'after the refusal' | 'pipelined with the upgrade head';
const TIMINGS: readonly Timing[] = ['after the refusal', 'pipelined with the upgrade head'];

interface Target {
  readonly url: string;
  readonly ca: string;
  readonly host: string;
  readonly token: string;
  /** An exec the upstream refuses for this caller. */
  readonly path: string;
  readonly refusal: number;
}

/** Plays the attack once; returns what the client received. */
async function attack(t: Test, target: Target, protocol: keyof typeof UPGRADES, timing: Timing): Promise<string> {
  const conn = await openRaw(target.url, target.ca, t);
  const head = requestHead('POST', target.path, target.host, [`Authorization: Bearer ${target.token}`, ...UPGRADES[protocol]]);
  if (timing === 'pipelined with the upgrade head') {
    conn.write(head + smuggled(target.host));
  } else {
    conn.write(head);
    await conn.until((text) => text.includes('\r\n\r\n'));
    conn.write(smuggled(target.host));
  }
  t.ok(await conn.closedWithin(5_000), 'the proxy closes the connection after relaying the refusal');
  const text = conn.received();
  t.match(text, new RegExp(`^HTTP/1\\.1 ${target.refusal} `), `the client sees the upstream's ${target.refusal}`);
  t.equal(countResponses(text), 1, 'one response only: the smuggled request was never answered');
  return text;
}

t.test('against the dev upstream', async (t) => {
  const stack: Stack = await startStack(t);
  await untilReady(stack.proxy);
  const token = await stack.mint({ email: 'nobody@example.com', groups: ['nobody'] });
  const { host } = new URL(stack.proxy.url);
  const target: Target = {
    url: stack.proxy.url,
    ca: stack.servingCA,
    host,
    token,
    path: `/api/v1/namespaces/default/pods/${MISSING_POD}/exec?command=sh&stdout=true`,
    refusal: 404,
  };

  for (const protocol of Object.keys(UPGRADES) as Array<keyof typeof UPGRADES>) {
    for (const timing of TIMINGS) {
      t.test(`${protocol}, smuggled request ${timing}`, async (t) => {
        await attack(t, target, protocol, timing);
        const reached = stack.upstream.seen.filter((r) => r.url.includes('/secrets') || r.user?.username === 'attacker');
        t.same(reached, [], 'nothing the attacker wrote reached the upstream as a request');
      });
    }
  }

  t.test('bytes sent before the 101 are delivered after it, and only after it', async (t) => {
    const conn = await openRaw(stack.proxy.url, stack.servingCA, t);
    const head = requestHead('POST', '/api/v1/namespaces/default/pods/web/exec?command=sh', host, [`Authorization: Bearer ${token}`, ...UPGRADES['SPDY/3.1']]);
    conn.write(`${head}early-bytes`);
    // The dev upstream echoes tunnel bytes: they come back after its 101.
    const text = await conn.until((s) => s.includes('early-bytes'));
    t.match(text, /^HTTP\/1\.1 101 /, 'the 101 comes first');
    t.ok(text.indexOf('early-bytes') > text.indexOf('\r\n\r\n'), 'the early bytes follow the 101 head');
    const upgrades = stack.upstream.seen.filter((r) => r.url.startsWith('/api/v1/namespaces/default/pods/web/exec'));
    t.equal(upgrades.length, 1, 'the upstream saw one upgrade request');
    t.equal(upgrades[0]?.user?.username, 'nobody@example.com', 'as the authenticated user');
  });
});

t.test('against the real kube-apiserver: a user bound to no role asks for secrets as system:masters', async (t) => {
  const cluster = await startKube(t);
  if (!cluster) return;
  const stack = await startProxiedStack(t, cluster);
  const { host } = new URL(stack.proxy.url);
  const target: Target = {
    url: stack.proxy.url,
    ca: stack.servingCA,
    host,
    token: await stack.mint({ email: 'nobody@example.com', groups: ['nobody'] }),
    // No RBAC grants pods/exec to this user: kube-apiserver answers 403 and keeps the connection.
    path: '/api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true&stdout=true',
    refusal: 403,
  };
  for (const protocol of Object.keys(UPGRADES) as Array<keyof typeof UPGRADES>) {
    for (const timing of TIMINGS) {
      t.test(`${protocol}, smuggled request ${timing}`, async (t) => {
        const text = await attack(t, target, protocol, timing);
        t.notMatch(text, /SecretList/, 'no secret list came back');
      });
    }
  }
  // The refusals are in kube-apiserver's audit log; the smuggled requests must not be.
  await cluster.auditEvent((e) => e.user.username === 'nobody@example.com' && e.requestURI.includes('/exec') && e.responseStatus?.code === 403);
  const smuggledEvents = (await cluster.auditEvents()).filter((e) => e.user.username === 'attacker' || e.requestURI.includes('kube-system/secrets'));
  t.same(smuggledEvents, [], 'kube-apiserver never received a request as the attacker');
});
