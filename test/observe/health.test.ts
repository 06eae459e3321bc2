// /healthz, /readyz and /metrics: the proxy starts while an issuer is down, says so on
// /readyz, keeps serving tokens of the issuers it has, and becomes ready when the issuer appears.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { request } from 'undici';
import { startDevIssuer } from '../../dev/issuer.js';
import { devPki, freePort, startStack, untilReady } from '../helpers/stack.js';


const get = async (url: string) => {
  const res = await request(url);
  return { status: res.statusCode, text: await res.body.text() };
};

t.test('readiness waits for every issuer; metrics count what happened', async (t) => {
  const pki = await devPki();
  const latePort = await freePort();
  const lateURL = `https://127.0.0.1:${latePort}`;
  const stack = await startStack(t, {
    configure: (c) => ({
      ...c,
      authentication: {
        ...c.authentication,
        jwt: [
          ...(c.authentication?.jwt ?? []),
          {
            issuer: { url: lateURL, audiences: ['kubernetes'], certificateAuthorityFile: pki.servingCA },
            claimMappings: { username: { claim: 'email', prefix: '' } },
          },
        ],
      },
    }),
  });

  t.equal((await get(`${stack.proxy.healthURL}/healthz`)).status, 200, 'alive at once');
  const waiting = await get(`${stack.proxy.healthURL}/readyz`);
  t.equal(waiting.status, 503, 'not ready while an issuer is unreachable');
  t.match(waiting.text, /not ready/);

  // The issuer that is up already serves its users.
  const deadline = Date.now() + 10_000;
  let status = 0;
  while (Date.now() < deadline && status !== 200) {
    const res = await stack.fetch('/api', { headers: { authorization: `Bearer ${await stack.mint()}` } });
    status = res.statusCode;
    await res.body.dump();
  }
  t.equal(status, 200, 'tokens of a discovered issuer work while another is down');

  const late = await startDevIssuer({
    tls: { cert: await readFile(pki.servingCert, 'utf8'), key: await readFile(pki.servingKey, 'utf8') },
    port: latePort,
  });
  t.teardown(() => late.close());
  await untilReady(stack.proxy, 20_000);
  t.equal((await get(`${stack.proxy.healthURL}/readyz`)).status, 200, 'ready once the issuer is discovered');

  const refused = await stack.fetch('/api', { headers: { authorization: 'Bearer x.y.z' } });
  await refused.body.dump();
  const metrics = (await get(`${stack.proxy.healthURL}/metrics`)).text;
  t.match(metrics, /kfp_requests_total\{code="200",auth_method="jwt",kind="short"\} [1-9]/);
  t.match(metrics, /kfp_requests_total\{code="401",auth_method="none",kind="short"\} [1-9]/);
  t.match(metrics, /kfp_authentication_failures_total\{reason="malformed_token"\} [1-9]/);
  t.match(metrics, /kfp_request_duration_seconds_bucket\{le="0.005",kind="short"\}/);
  t.equal((await get(`${stack.proxy.healthURL}/nope`)).status, 404);
});

t.test('with another way in (client certificates), an issuer that is down does not hold readiness back', async (t) => {
  const pki = await devPki();
  const downURL = `https://127.0.0.1:${await freePort()}`;
  const stack = await startStack(t, {
    configure: (c) => ({
      ...c,
      // The break-glass path: certificates of a CA that is not the identity provider's.
      listen: { ...c.listen, tls: { ...c.listen.tls, clientCAFile: pki.frontProxyCA } },
      authentication: {
        ...c.authentication,
        jwt: [
          ...(c.authentication?.jwt ?? []),
          { issuer: { url: downURL, audiences: ['kubernetes'], certificateAuthorityFile: pki.servingCA }, claimMappings: { username: { claim: 'email', prefix: '' } } },
        ],
      },
    }),
  });
  t.equal((await get(`${stack.proxy.healthURL}/readyz`)).status, 200, 'ready while an issuer is unreachable');
  t.same(stack.proxy.notReady(), []);
});
