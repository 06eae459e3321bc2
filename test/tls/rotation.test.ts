// Certificate rotation: when the serving certificate files change (cert-manager), a new
// connection sees the new certificate while an open watch keeps streaming.
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import t from 'tap';
import { issueCertificate } from '../../src/dev/pki.js';
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
  t.match(JSON.parse(chunk.toString().split('\n')[0]!), { type: 'ADDED' }, 'the open watch still streams');
  watch.body.destroy();
});
