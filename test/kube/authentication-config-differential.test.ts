// The proof by difference: one AuthenticationConfiguration file drives both
// kube-apiserver (--authentication-config) and the proxy
// (authentication.configFile). Every token of the corpus is sent straight to
// kube-apiserver and through the proxy to the same apiserver (by requestheader);
// SelfSubjectReview must report the identical userInfo, or both must refuse.
// Where they differ, kube is right by definition.
//
// The random part is seeded: the seed is printed, KFP_SEED=<n> replays it.
import { randomInt } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { Agent, request } from 'undici';
import { startDevIssuer, type DevIssuer } from '../../dev/issuer.js';
import { devPki } from '../helpers/stack.js';
import { startKube, startProxiedStack } from './helpers/kube-stack.js';
import { authenticationConfiguration, buildCorpus, type ClaimSource, type CorpusIssuer, type CorpusToken } from './helpers/token-corpus.js';

const RANDOM_TOKENS = Number(process.env.KFP_RANDOM_TOKENS ?? 800);
const CONCURRENCY = 8;
const REVIEW = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
const REVIEW_BODY = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });

const seed = process.env.KFP_SEED ? Number(process.env.KFP_SEED) : randomInt(2 ** 31);
t.comment(`seed ${seed} (replay with KFP_SEED=${seed})`);

// The issuers come first: kube-apiserver reads their URLs and CA from the file at start.
const pki = await devPki();
const tls = { cert: await readFile(pki.servingCert, 'utf8'), key: await readFile(pki.servingKey, 'utf8') };
const names = ['A', 'B', 'C', 'D'] as const;
const devIssuers: DevIssuer[] = [];
for (let i = 0; i < names.length; i++) devIssuers.push(await startDevIssuer({ tls }));
t.teardown(() => Promise.all(devIssuers.map((i) => i.close())));
const issuers = Object.fromEntries(names.map((name, i) => [name, { name, url: devIssuers[i].url, keys: devIssuers[i].jwks.keys } satisfies CorpusIssuer])) as Record<(typeof names)[number], CorpusIssuer>;

const dir = await mkdtemp(join(tmpdir(), 'kfp-authn-config-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const configFile = join(dir, 'authentication-config.yaml');
await writeFile(configFile, authenticationConfiguration({ A: issuers.A.url, B: issuers.B.url, C: issuers.C.url, D: issuers.D.url }, await readFile(pki.servingCA, 'utf8')));

// Distributed claims' endpoint: HTTPS with the issuers' certificate, so the file's CA verifies it.
const claimBodies = new Map<string, { status: number; body: string }>();
const claimServer = createServer(tls, (req, res) => {
  const found = claimBodies.get(req.url ?? '');
  res.writeHead(found?.status ?? 404, { 'content-type': 'application/jwt' }).end(found?.body ?? 'not found');
});
await new Promise<void>((resolve) => claimServer.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise((resolve) => claimServer.close(resolve)));
const claimSource: ClaimSource = {
  url: `https://127.0.0.1:${(claimServer.address() as AddressInfo).port}`,
  serve: (path, body, status = 200) => claimBodies.set(path, { status, body }),
};

const cluster = await startKube(t, { extraArgs: [`--authentication-config=${configFile}`] });
if (cluster) {
  const stack = await startProxiedStack(t, cluster, {
    configure: (config) => ({ ...config, authentication: { ...config.authentication, jwt: [], configFile } }),
  });
  // Straight to kube-apiserver with the token only: no client certificate, which would authenticate first.
  const direct = new Agent({ connect: { ca: await readFile(cluster.caFile, 'utf8') }, connections: CONCURRENCY });
  t.teardown(() => direct.close());

  type Answer = { status: number; userInfo?: unknown; body?: string };
  const review = async (base: string, dispatcher: Agent, authorization: string): Promise<Answer> => {
    const res = await request(`${base}${REVIEW}`, {
      dispatcher,
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json', accept: 'application/json' },
      body: REVIEW_BODY,
    });
    const body = await res.body.text();
    if (res.statusCode === 201) return { status: 201, userInfo: normalise((JSON.parse(body) as { status: { userInfo: Record<string, unknown> } }).status.userInfo) };
    return { status: res.statusCode, body: body.slice(0, 300) };
  };
  const toKube = (authorization: string) => review(cluster.url, direct, authorization);
  const toProxy = (authorization: string) => review(stack.proxy.url, stack.client, authorization);

  t.test('kube-apiserver and the proxy verify tokens of every issuer in the file (they load discovery after start)', async (t) => {
    const corpus = await buildCorpus(issuers, seed, 0, claimSource);
    // Both load a distributed-claims issuer's keys on first use too, and refuse its claims until then.
    const known = ['token', 'username-prefix, required-claim', 'username claim mapping with expression', 'nested claim missing: optional default', 'groups-distributed', 'groups-distributed, JWT of another issuer'].map(
      (name) => corpus.find((c) => c.name === name)!,
    );
    const deadline = Date.now() + 60_000;
    let answers: Answer[];
    do {
      answers = await Promise.all(known.flatMap((k) => [toKube(k.authorization), toProxy(k.authorization)]));
      if (answers.every((a) => a.status === 201)) break;
      await sleep(250);
    } while (Date.now() < deadline);
    t.same(answers.map((a) => a.status), known.flatMap(() => [201, 201]), `a known-good token of each issuer works on both (kube, proxy) (${answers.map((a) => a.body ?? '').join(' ')})`);
  });

  t.test('every token: the same userInfo from kube-apiserver and through the proxy, or both refuse', async (t) => {
    const started = Date.now();
    const corpus = await buildCorpus(issuers, seed, RANDOM_TOKENS, claimSource);
    const results: Array<{ token: CorpusToken; kube: Answer; proxy: Answer }> = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < corpus.length) {
          const token = corpus[next++];
          const [kube, proxy] = await Promise.all([toKube(token.authorization), toProxy(token.authorization)]);
          results.push({ token, kube, proxy });
        }
      }),
    );
    // Identities requestheader cannot carry (see unrepresentable): kube accepts them, the proxy must refuse, never send another identity.
    // Also when kube refused the identity on authorization (403, so no userInfo to judge by) and the
    // proxy refused it as unrepresentable: both refuse and nothing was sent (seed 1322216834: a jti
    // of " padded " makes kube's credential-id extra end in a space, which Go would trim).
    const bothRefused = (r: (typeof results)[number]) => r.kube.status === 403 && r.proxy.status === 403 && (r.proxy.body ?? '').includes('cannot be sent in a request header');
    const reasonOf = ({ kube }: (typeof results)[number]) => (kube.status === 201 ? unrepresentableReason(kube.userInfo as UserInfo) : 'kube refused it on authorization (403), the proxy as not representable');
    const unrepresentable = results.filter((r) => (r.kube.status === 201 && unrepresentableReason(r.kube.userInfo as UserInfo) !== undefined) || bothRefused(r));
    for (const { token, kube, proxy } of unrepresentable) {
      if (proxy.status !== 401 && proxy.status !== 403) {
        t.fail(`${token.klass} / ${token.name}: not representable over requestheader (${unrepresentableReason(kube.userInfo as UserInfo)}), yet the proxy answered ${proxy.status}`, { kube: kube.userInfo, proxy: proxy.userInfo ?? proxy.body });
      }
    }
    // Groups made by iterating a JSON object: Go ranges over a map in random order (cel-go stringIfaceMapAccessor.Iterator),
    // so kube's own order changes from one request to the next; compared as a set, counted apart.
    const randomOrder = results.filter((r) => !unrepresentable.includes(r) && teamsIsObject(r.token) && !same(r.kube, r.proxy) && same(sortedGroups(r.kube), sortedGroups(r.proxy)));
    const differences = results.filter((r) => !unrepresentable.includes(r) && !randomOrder.includes(r) && !same(r.kube, r.proxy));
    const accepted = results.filter(({ kube }) => kube.status === 201).length;
    t.comment(
      `${results.length} tokens (${accepted} accepted by kube-apiserver) in ${Date.now() - started} ms; ${differences.length} differences; ` +
        `${unrepresentable.length} not representable over requestheader (kube accepts, the proxy refuses); ` +
        `${randomOrder.length} the same groups in another order (kube's order comes from Go map iteration, random)`,
    );
    const reasons = new Map<string, number>();
    for (const r of unrepresentable) reasons.set(reasonOf(r)!, (reasons.get(reasonOf(r)!) ?? 0) + 1);
    for (const [reason, n] of reasons) t.comment(`  ${n} × not representable: ${reason}`);

    const byClass = new Map<string, typeof differences>();
    for (const d of differences) {
      const key = `${cause(d.kube, d.proxy)} (kube ${d.kube.status}, proxy ${d.proxy.status}; ${d.token.klass})`;
      byClass.set(key, [...(byClass.get(key) ?? []), d]);
    }
    for (const [key, list] of [...byClass].sort((a, b) => b[1].length - a[1].length)) {
      const example = list[0];
      t.comment(
        `${list.length} × ${key}; e.g. ${example.token.name}\n` +
          `  claims: ${JSON.stringify(example.token.claims ?? example.token.authorization.slice(0, 80))}${example.token.header ? `\n  header: ${JSON.stringify(example.token.header)}` : ''}\n` +
          `  kube:  ${JSON.stringify(example.kube.userInfo ?? example.kube.body)}\n` +
          `  proxy: ${JSON.stringify(example.proxy.userInfo ?? example.proxy.body)}`,
      );
    }
    // KFP_DIFF_FILE=<path>: every difference as JSON, to study them (or hand them to whoever fixes the proxy).
    if (process.env.KFP_DIFF_FILE) await writeFile(process.env.KFP_DIFF_FILE, JSON.stringify(differences.map(({ token: { authorization: _, ...token }, ...d }) => ({ ...token, ...d })), null, 1));
    for (const { token, kube, proxy } of differences) {
      t.fail(`${token.klass} / ${token.name}: kube ${kube.status}, proxy ${proxy.status}`, {
        claims: token.claims,
        header: token.header,
        kube: kube.userInfo ?? kube.body,
        proxy: proxy.userInfo ?? proxy.body,
      });
    }
    t.equal(differences.length, 0, `no differences over ${results.length} tokens (seed ${seed})`);
  });

  t.test('a changed file is reloaded by both: kube-apiserver and the proxy map the same token anew', async (t) => {
    const corpus = await buildCorpus(issuers, seed, 0);
    const token = corpus.find((c) => c.name === 'username-prefix, required-claim')!.authorization;
    const name = (a: Answer) => (a.userInfo as { username?: string } | undefined)?.username ?? `(${a.status})`;
    t.equal(name(await toKube(token)), 'b:alice');
    // Written in place, as an editor would (kube's fsnotify sees it; a minute at most otherwise).
    await writeFile(configFile, (await readFile(configFile, 'utf8')).replace('prefix: "b:"', 'prefix: "b2:"'));
    const written = Date.now();
    const until = async (ask: (token: string) => Promise<Answer>, ms: number) => {
      const deadline = Date.now() + ms;
      let seen = name(await ask(token));
      while (seen !== 'b2:alice' && Date.now() < deadline) {
        await sleep(250);
        seen = name(await ask(token));
      }
      return seen;
    };
    const kube = await until(toKube, 90_000);
    t.comment(`kube-apiserver answered with the new file after ${Date.now() - written} ms`);
    // The proxy looks at the file every 5 s (RELOAD_INTERVAL_MS).
    const both = [kube, await until(toProxy, 15_000)];
    t.comment(`the proxy after ${Date.now() - written} ms`);
    t.equal(both[0], 'b2:alice', 'kube-apiserver reloaded the file');
    t.equal(both[1], 'b2:alice', 'the proxy reloaded the file (server.ts must use createReloadingJwtAuthenticator for authentication.configFile)');
  });
}

/** userInfo with its optional parts made explicit, extra keys in order (a map has none), so two are compared by value. */
function normalise(userInfo: Record<string, unknown>): unknown {
  const extra = (userInfo.extra ?? {}) as Record<string, string[]>;
  return {
    username: userInfo.username ?? '',
    uid: userInfo.uid ?? '',
    groups: userInfo.groups ?? [],
    extra: Object.fromEntries(Object.keys(extra).sort().map((k) => [k, extra[k]])),
  };
}

type UserInfo = { username: string; uid: string; groups: string[]; extra: Record<string, string[]> };

/**
 * Why requestheader cannot carry the identity kube-apiserver reported, if it
 * cannot: Go's net/textproto trims spaces and tabs at either end of a header
 * value and no header holds a control character; the requestheader
 * authenticator (k8s.io/apiserver pkg/authentication/request/headerrequest)
 * skips empty group values and takes an empty user name as no user. Decided
 * by kube's answer only, never by the proxy's.
 */
function unrepresentableReason(user: UserInfo): string | undefined {
  if (user.username === '') return 'an empty user name';
  if (user.groups.includes('')) return 'an empty group';
  // eslint-disable-next-line no-control-regex
  const bad = (v: string) => /^[ \t]|[ \t]$|[\u0000-\u0008\u000a-\u001f\u007f]/.test(v);
  const values = [user.username, user.uid, ...user.groups, ...Object.values(user.extra).flat()];
  if (values.some(bad)) return 'a value with a space or tab at an end, or a control character';
  return undefined;
}

/** The kind of a difference, in words, for counting them. */
function cause(kube: { status: number; body?: string }, proxy: { status: number; body?: string }): string {
  if (proxy.status === 403 && proxy.body?.includes('cannot be sent in a request header')) {
    return kube.status === 201 ? 'an identity the proxy cannot carry in request headers' : 'refused by both, for the proxy as not carriable in headers';
  }
  if (kube.status === 201 && proxy.status === 201) return 'a different userInfo';
  if (kube.status === 201) return 'kube-apiserver accepts, the proxy refuses';
  if (proxy.status === 201) return 'kube-apiserver refuses, the proxy accepts';
  return 'refused differently';
}

/**
 * Both accepted with the same userInfo, or both refused with 401, or both
 * forbidden with the same Status (a user both authenticate, such as
 * system:anonymous, that may not create a SelfSubjectReview).
 */
function same(kube: { status: number; userInfo?: unknown; body?: string }, proxy: { status: number; userInfo?: unknown; body?: string }): boolean {
  if (kube.status === 201 && proxy.status === 201) return JSON.stringify(kube.userInfo) === JSON.stringify(proxy.userInfo);
  if (kube.status === 403 && proxy.status === 403) return kube.body === proxy.body && !kube.body?.includes('cannot be sent in a request header');
  return kube.status === 401 && proxy.status === 401;
}

/** Issuer D's groups expression iterates claims.org.teams: a JSON object there makes kube's order random. */
function teamsIsObject(token: CorpusToken): boolean {
  const teams = (token.claims?.org as { teams?: unknown } | undefined)?.teams;
  return typeof teams === 'object' && teams !== null && !Array.isArray(teams);
}

function sortedGroups<A extends { status: number; userInfo?: unknown }>(answer: A): A {
  const info = answer.userInfo as UserInfo | undefined;
  return info ? { ...answer, userInfo: { ...info, groups: [...info.groups].sort() } } : answer;
}
