// Attack class: a page the API serves is same-origin with the API
// (reference: kubernetes/kubernetes#10351; no CVE).
//
// kube-apiserver relays arbitrary workload content from `pods/<name>/proxy/…`,
// `services/<name>/proxy/…` and `nodes/<name>/proxy/…`. Through the proxy such a page
// has the proxy's origin, so its script sends requests that carry the session cookie
// and pass the same-origin check: whoever controls one pod's web page acts with the
// rights of everyone who opens it. Contract: a cookie-authenticated request to any of
// those subresources (any method, upgrades too; matched after percent-decoding, as
// kube-apiserver routes, and ignoring empty segments) is answered 403 Status (reason
// Forbidden) and never reaches the upstream. A bearer token still works there.
import t from 'tap';
import { rawRequest } from '../kube/helpers/raw-http.js';
import { FORBIDDEN_BEFORE_UPSTREAM, observe } from '../helpers/observe.js';
import { sendUpgrade, websocketLines } from '../helpers/raw-upgrade.js';
import { signedInVictim, USER } from '../helpers/workload-page.js';


/**
 * Spellings of a proxy subresource. kube-apiserver v1.37.2 routes on the percent-decoded path
 * and trims leading slashes, so it serves the encoded and `//api` ones as the proxy subresource
 * (checked against the real one); empty segments inside the path it does not, but the contract
 * refuses them too.
 */
const SPELLINGS = [
  '/api/v1/namespaces/default/pods/web/proxy/',
  '/api/v1/namespaces/default/pods/web/proxy',
  '/api/v1/namespaces/default/pods/web/proxy/index.html?x=1',
  '/api/v1/namespaces/default/pods/web:8080/proxy/index.html',
  '/api/v1/namespaces/default/pods/https:web:8443/proxy/',
  '/api/v1/namespaces/default/pods/web/%70roxy/',
  '/api/v1/namespaces/default/%70ods/web/proxy/',
  '/api/v1/namespaces/default/pods/web/%70%72%6f%78%79/',
  '/api/v1/namespaces/default//pods/web/proxy/',
  '//api/v1/namespaces/default/pods/web/proxy/',
  '/api/v1/namespaces/default/pods//web/proxy/',
  '/api/v1/namespaces/default/services/web/proxy/',
  '/api/v1/namespaces/default/services/https:web:443/proxy/metrics',
  '/api/v1/nodes/node-1/proxy/',
  '/api/v1/nodes/node-1:10250/proxy/metrics',
  '/api/v1/%6Eodes/node-1/proxy/',
];

t.test('pages the API serves on the proxy origin', async (t) => {
  const { stack, proxy, own, context, session } = await signedInVictim(t);

  const control = await rawRequest(proxy, stack.servingCA, 'GET', '/debug/headers', session);
  t.equal(control.status, 200, 'control: the session cookie works elsewhere');

  t.test("a workload's page opened in the signed-in browser", async (t) => {
    const page = await context.newPage();
    let outcome: unknown;
    const seen = await observe(stack.upstream, async () => {
      const response = await page.goto(`${proxy}/api/v1/namespaces/default/pods/web/proxy/`);
      // When the page was served its script has run: wait for its request to finish.
      outcome = await page.evaluate('window.outcome');
      return { status: response?.status() ?? 0, body: (await response?.text()) ?? '' };
    });
    t.equal(seen.status, 403, 'the page load is refused');
    t.equal(seen.reason, 'Forbidden', 'with a Kubernetes Status');
    t.equal(outcome, undefined, 'no script of the workload ran');
    // Only what the page could do counts: the browser may also ask this origin for a favicon.
    const harmful = seen.upstreamReceived.filter((r) => r.startsWith('POST ') || (r.includes('/proxy') && r.endsWith(` as ${USER}`)));
    t.same(harmful, [], 'the upstream received neither the POST nor any request under proxy/ as the person');
    await page.close();
  });

  t.test('raw requests with the session cookie, every spelling and method', async (t) => {
    const sameOrigin = [`Origin: ${own}`];
    const json = ['Content-Type: application/json'];
    for (const path of SPELLINGS) {
      for (const [method, lines, body] of [
        ['GET', [], ''],
        ['POST', [...sameOrigin, ...json], '{"kind":"ConfigMap"}'],
        ['PUT', [...sameOrigin, ...json], '{"kind":"ConfigMap"}'],
        ['DELETE', sameOrigin, ''],
      ] as const) {
        const seen = await observe(stack.upstream, () => rawRequest(proxy, stack.servingCA, method, path, [...session, ...lines], body));
        t.same(seen, FORBIDDEN_BEFORE_UPSTREAM, `${method} ${path}`);
      }
      const seen = await observe(stack.upstream, () => sendUpgrade(t, proxy, stack.servingCA, 'GET', path, [...websocketLines(), ...session, ...sameOrigin]));
      t.same(seen, FORBIDDEN_BEFORE_UPSTREAM, `WebSocket upgrade ${path}`);
    }
  });

  // kube-apiserver v1.37.2 answers both as pods/proxy of pod "web" (audit objectRef subresource "proxy"):
  // Go's URL.Path decodes %2F before the path is split.
  t.test('an encoded slash', async (t) => {
    for (const path of ['/api/v1/namespaces/default/pods%2Fweb%2Fproxy/', '/api/v1/namespaces/default/pods/web%2fproxy/']) {
      const seen = await observe(stack.upstream, () => rawRequest(proxy, stack.servingCA, 'GET', path, session));
      t.same(seen, FORBIDDEN_BEFORE_UPSTREAM, path);
    }
  });

  t.test('a bearer token still works there', async (t) => {
    const bearer = [`Authorization: Bearer ${await stack.mint()}`];
    const page = await rawRequest(proxy, stack.servingCA, 'GET', SPELLINGS[0], bearer);
    t.equal(page.status, 200, "the workload's page, as the API server relays it");
    t.match(page.body, /<title>a workload<\/title>/);
    for (const path of SPELLINGS) {
      const seen = await observe(stack.upstream, () => rawRequest(proxy, stack.servingCA, 'POST', path, bearer, '{}'));
      t.same(seen.upstreamReceived, [`POST ${path} as minted@example.com`], `POST ${path}: reached the upstream as the token's user`);
    }
    const seen = await observe(stack.upstream, () => sendUpgrade(t, proxy, stack.servingCA, 'GET', SPELLINGS[0], [...websocketLines(), ...bearer]));
    t.same(seen.upstreamReceived, [`GET ${SPELLINGS[0]} as minted@example.com`], 'a WebSocket upgrade reached the upstream as the user');
  });
});
