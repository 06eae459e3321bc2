// Certificate rotation: when the serving certificate files change (cert-manager), a new
// connection sees the new certificate while an open watch keeps streaming.
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import t from 'tap';
import { issueCertificate } from '../../dev/pki.js';
import { startStack, untilReady } from '../helpers/stack.js';

async function servedSerial(url: string, ca: string): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port: Number(new URL(url).port), ca, servername: 'localhost' });
  await once(socket, 'secureConnect');
  const serial = socket.getPeerX509Certificate()!.serialNumber;
  socket.destroy();
  return serial;
}

t.test('serving certificate rotation', async (t) => {
  const dir = t.testdir();
  const certFile = join(dir, 'serving.crt');
  const keyFile = join(dir, 'serving.key');

  const stack = await startStack(t, {
    configure: (c) => ({ ...c, listen: { ...c.listen, tls: { certFile, keyFile } } }),
    beforeProxy: async (pki) => {

      await copyFile(pki.servingCert, certFile);
      await copyFile(pki.servingKey, keyFile);
    },
  });
  await untilReady(stack.proxy);
  const oldSerial = await servedSerial(stack.proxy.url, stack.servingCA);
  t.equal(oldSerial, new X509Certificate(await readFile(certFile)).serialNumber);

  const watch = await stack.fetch('/api/v1/namespaces/default/pods?watch=1', { headers: { authorization: `Bearer ${await stack.mint()}` } });
  t.equal(watch.statusCode, 200);

  // Rotate the way a secret volume does: write new files beside, then rename over.
  const next = await issueCertificate({
    caCertPem: stack.servingCA,
    caKeyPem: await readFile(stack.pki.servingCAKey, 'utf8'),
    commonName: 'localhost',
    serverAuth: true,
    dnsNames: ['localhost'],
    ips: ['127.0.0.1', '::1'],
  });
  await writeFile(`${certFile}.new`, next.certPem);
  await writeFile(`${keyFile}.new`, next.keyPem);
  await rename(`${keyFile}.new`, keyFile);
  await rename(`${certFile}.new`, certFile);
  const newSerial = new X509Certificate(next.certPem).serialNumber;

  let served = oldSerial;
  for (let i = 0; i < 100 && served !== newSerial; i++) {
    await new Promise((r) => setTimeout(r, 100));
    served = await servedSerial(stack.proxy.url, stack.servingCA);
  }
  t.equal(served, newSerial, 'a new connection gets the new certificate');

  stack.upstream.emitPodEvent('default', 'ADDED');
  const [chunk] = (await once(watch.body, 'data')) as [Buffer];
  t.match(JSON.parse(chunk.toString().split('\n')[0]), { type: 'ADDED' }, 'the open watch still streams');
  watch.body.destroy();
});

t.test('upstream client certificate rotation', async (t) => {
  // The upstream (like kube-apiserver) trusts only CN front-proxy-client. Rotating to a
  // certificate with another CN makes new requests unauthenticated upstream, which shows
  // the new certificate is the one in use; an open watch keeps its connection and streams on.
  const dir = t.testdir();
  const certFile = join(dir, 'client.crt');
  const keyFile = join(dir, 'client.key');
  const stack = await startStack(t, {
    configure: (c) => ({ ...c, upstream: { ...c.upstream, clientCertFile: certFile, clientKeyFile: keyFile } }),
    beforeProxy: async (pki) => {
      await copyFile(pki.frontProxyClientCert, certFile);
      await copyFile(pki.frontProxyClientKey, keyFile);
    },
  });
  await untilReady(stack.proxy);
  const auth = { authorization: `Bearer ${await stack.mint()}` };
  const status = async () => {
    const res = await stack.fetch('/api', { headers: auth });
    await res.body.dump();
    return res.statusCode;
  };
  t.equal(await status(), 200);
  const watch = await stack.fetch('/api/v1/namespaces/rotate/pods?watch=1', { headers: auth });
  t.equal(watch.statusCode, 200);

  const install = async (pair: { certPem: string; keyPem: string }) => {
    await writeFile(`${keyFile}.new`, pair.keyPem);
    await writeFile(`${certFile}.new`, pair.certPem);
    await rename(`${keyFile}.new`, keyFile);
    await rename(`${certFile}.new`, certFile);
  };
  const until = async (want: number) => {
    for (let i = 0; i < 50; i++) {
      if ((await status()) === want) return want;
      await new Promise((r) => setTimeout(r, 100));
    }
    return status();
  };
  const ca = { caCertPem: await readFile(stack.pki.frontProxyCA, 'utf8'), caKeyPem: await readFile(stack.pki.frontProxyCAKey, 'utf8') };
  await install(await issueCertificate({ ...ca, commonName: 'not-an-allowed-name', clientAuth: true }));
  t.equal(await until(401), 401, 'new requests carry the new certificate');

  t.equal(stack.upstream.emitPodEvent('rotate', 'ADDED'), 1, 'the watch is still open upstream');
  const [chunk] = (await once(watch.body, 'data')) as [Buffer];
  t.match(chunk.toString(), /"type":"ADDED"/, 'and its event arrives');

  await install(await issueCertificate({ ...ca, commonName: 'front-proxy-client', clientAuth: true }));
  t.equal(await until(200), 200, 'a valid certificate again');
  watch.body.destroy();
});
