// authentication.passthrough against the real kube-apiserver: a bearer token no
// authenticator of the proxy claims (here a service account's, from the TokenRequest
// API) goes to kube-apiserver unread, and the caller is whoever kube-apiserver says the
// token is: the same answer as straight to it. Nothing the client sends beside the token
// is vouched for; a JWT of a configured issuer is never passed through.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { Agent, request } from 'undici';
import { serviceAccountToken, startKube, startProxiedStack } from './helpers/kube-stack.js';
import { rawRequest } from './helpers/raw-http.js';

const cluster = await startKube(t);
if (cluster) {
  const withPassthrough = await startProxiedStack(t, cluster, {
    configure: (c) => ({ ...c, authentication: { ...c.authentication, passthrough: true } }),
  });
  const review = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
  const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  const token = await serviceAccountToken(cluster, 'ci', 'deployer');
  const straightAgent = new Agent({ connect: { ca: await readFile(cluster.caFile, 'utf8') } });
  t.teardown(() => straightAgent.close());

  /** SelfSubjectReview straight to kube-apiserver with this token and nothing else. */
  const direct = async (bearer: string) => {
    const res = await request(`${cluster.url}${review}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body,
      dispatcher: straightAgent,
    });
    return { status: res.statusCode, userInfo: ((await res.body.json()) as { status?: { userInfo?: unknown } }).status?.userInfo };
  };
  const viaProxy = async (url: string, servingCA: string, lines: string[]) => {
    const res = await rawRequest(url, servingCA, 'POST', review, ['Content-Type: application/json', ...lines], body);
    return { res, userInfo: res.status === 201 ? (JSON.parse(res.body) as { status: { userInfo: unknown } }).status.userInfo : undefined };
  };

  t.test('a service-account token through the proxy is the same user as straight to kube-apiserver', async (t) => {
    const straight = await direct(token);
    t.equal(straight.status, 201);
    const { res, userInfo } = await viaProxy(withPassthrough.proxy.url, withPassthrough.servingCA, [`Authorization: Bearer ${token}`]);
    t.equal(res.status, 201, res.body);
    t.same(userInfo, straight.userInfo);
    t.match(userInfo, { username: 'system:serviceaccount:ci:deployer' });
    const line = await withPassthrough.proxyAuditLine(res.header('audit-id') ?? '');
    t.equal(line.authMethod, 'passthrough', 'the audit line says kube-apiserver decided');
    t.equal(line.user, null, 'the proxy vouches for no user');
  });

  t.test('identity headers sent beside a passed-through token are dropped', async (t) => {
    const { res, userInfo } = await viaProxy(withPassthrough.proxy.url, withPassthrough.servingCA, [
      `Authorization: Bearer ${token}`,
      'X-Remote-User: system:admin',
      'X-Remote-Group: system:masters',
      'X-Remote-Extra-Scopes: all',
    ]);
    t.equal(res.status, 201, res.body);
    t.match(userInfo, { username: 'system:serviceaccount:ci:deployer' });
    t.notMatch(JSON.stringify(userInfo), /system:masters|system:admin|scopes/);
  });

  t.test('Impersonate-* beside a passed-through token is refused, as for any caller', async (t) => {
    const { res } = await viaProxy(withPassthrough.proxy.url, withPassthrough.servingCA, [`Authorization: Bearer ${token}`, 'Impersonate-User: system:admin']);
    t.equal(res.status, 403, res.body);
  });

  t.test('a JWT naming a configured issuer is never passed through', async (t) => {
    const forged = `${(await withPassthrough.mint({})).split('.').slice(0, 2).join('.')}.c2lnbmF0dXJl`;
    const { res } = await viaProxy(withPassthrough.proxy.url, withPassthrough.servingCA, [`Authorization: Bearer ${forged}`]);
    t.equal(res.status, 401);
    const line = await withPassthrough.proxyAuditLine(res.header('audit-id') ?? '');
    t.equal(line.rejectReason, 'bad_signature', 'refused by the proxy');
    t.equal(line.upstreamStatus, null, 'kube-apiserver never saw it');
  });

  t.test('without passthrough the same token is refused by the proxy', async (t) => {
    const closed = await startProxiedStack(t, cluster);
    const { res } = await viaProxy(closed.proxy.url, closed.servingCA, [`Authorization: Bearer ${token}`]);
    t.equal(res.status, 401);
    const line = await closed.proxyAuditLine(res.header('audit-id') ?? '');
    t.equal(line.upstreamStatus, null);
    t.equal(line.rejectReason, 'unknown_issuer', 'a JWT of an issuer the proxy does not know');
  });
}
