// Client CA rotation: when listen.tls.clientCAFile changes, new connections are
// verified against the new bundle, an open connection is judged by it at its next
// request (as kube-apiserver verifies per request), and the serving certificate
// stays; a file that is not a usable bundle keeps the old one.
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { Agent, request } from 'undici';
import { leaf, rootCA, type Issued } from '../helpers/client-certificates.js';
import { startStack, untilReady } from '../helpers/stack.js';

const REVIEW = '/apis/authentication.k8s.io/v1/selfsubjectreviews';

t.test('client CA rotation', async (t) => {
  const dir = t.testdir();
  const caFile = join(dir, 'client-ca.crt');
  const oldCA = await rootCA('CN=old client CA');
  const newCA = await rootCA('CN=new client CA');
  await writeFile(caFile, oldCA.certPem);
  const stack = await startStack(t, { configure: (c) => ({ ...c, listen: { ...c.listen, tls: { ...c.listen.tls, clientCAFile: caFile } } }) });
  await untilReady(stack.proxy);

  const agentFor = (cert: Issued) => {
    const agent = new Agent({ connect: { ca: stack.servingCA, cert: cert.certPem, key: cert.keyPem } });
    t.teardown(() => agent.close());
    return agent;
  };
  const status = async (agent: Agent) => {
    const res = await request(`${stack.proxy.url}${REVIEW}`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }),
    });
    await res.body.dump();
    return res.statusCode;
  };
  const oldUser = await leaf(oldCA, { subject: 'CN=old-user' });
  const newUser = await leaf(newCA, { subject: 'CN=new-user' });
  const open = agentFor(oldUser);
  t.equal(await status(open), 201, 'the old CA\'s user, on a connection that stays open');
  t.equal(await status(agentFor(newUser)), 401, 'the new CA is not trusted yet');

  const replace = async (pem: string) => {
    await writeFile(`${caFile}.new`, pem);
    await rename(`${caFile}.new`, caFile);
  };
  await replace(newCA.certPem);
  let fresh = 401;
  for (let i = 0; i < 100 && fresh !== 201; i++) {
    await sleep(100);
    fresh = await status(agentFor(newUser));
  }
  t.equal(fresh, 201, 'a new connection is verified against the new bundle');
  t.equal(await status(agentFor(oldUser)), 401, 'and the old CA is no longer trusted');
  t.equal(await status(open), 401, 'not on the connection opened before the change either');

  const user = await leaf(newCA, { subject: 'CN=not-a-ca' });
  await replace(user.certPem);
  await sleep(2500);
  t.equal(await status(agentFor(newUser)), 201, 'a file holding no CA is refused and the last good bundle stays');
});
