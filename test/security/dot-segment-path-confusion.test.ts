// Attack class: path-normalisation confusion between the gateway and the server
// behind it: the gateway decides on a path it has normalised, the server routes the
// path as sent. References: Orange Tsai, "Breaking Parser Logic! Take Your Path
// Normalization Off and Pop 0days Out", Black Hat USA 2018; Envoy CVE-2019-9901
// (an access rule judged on another path than the one routed); the page this
// protects against is kubernetes/kubernetes#10351 (no CVE).
//
// The session cookie is not accepted on pods/…/proxy, services/…/proxy and
// nodes/…/proxy (src/login/cookie-scope.ts): a workload's page served there has the
// proxy's origin, and its script would act with the signed-in person's cookie. The
// proxy decodes the path once and then resolves `..` segments. kube-apiserver
// decodes once too, but never resolves `..`: `…/pods/web/proxy/..%2F` is, for
// kube-apiserver v1.37.2, the proxy subresource of pod "web" (audit objectRef
// subresource "proxy"), while the proxy pops `proxy` and sees `…/pods/web`, a plain
// GET of a pod. A browser keeps `..%2F` as it is (it is not a dot segment for the
// WHATWG URL parser), so a link is enough: the victim opens
// `https://proxy/api/v1/namespaces/default/pods/evil/proxy/..%2F`, the workload's page
// is served on the proxy's origin with the victim's cookie, and its script POSTs as
// the victim with a same-origin Origin.
//
// Contract: a cookie-authenticated request whose path kube-apiserver routes to a
// proxy subresource is refused (403 Status, reason Forbidden) before the upstream,
// whatever `..` (decoded or not) follows the `proxy` segment.
import t from 'tap';
import { browserLogin, launchBrowser, newContext, SESSION_COOKIE } from '../helpers/browser.js';
import { FORBIDDEN_BEFORE_UPSTREAM, observe } from '../helpers/observe.js';
import { sendUpgrade, websocketLines } from '../helpers/raw-upgrade.js';
import { startStack, untilReady } from '../helpers/stack.js';
import { CONFIGMAPS, signedInVictim, USER } from '../helpers/workload-page.js';
import { rawRequest } from '../kube/helpers/raw-http.js';
import { startKube } from '../kube/helpers/kube-stack.js';


/**
 * Proxy subresources with a `..` after `proxy`, each of which kube-apiserver v1.37.2 routes
 * to the proxy subresource (checked below against the real one). The encoded ones are what
 * a browser sends unchanged; the literal `..` ones only a raw client sends.
 */
const SPELLINGS = [
  '/api/v1/namespaces/default/pods/web/proxy/..%2F',
  '/api/v1/namespaces/default/pods/web/proxy/..%2f',
  '/api/v1/namespaces/default/pods/web/proxy/%2e%2e%2F',
  '/api/v1/namespaces/default/pods/web/proxy/..%2Findex.html',
  '/api/v1/namespaces/default/pods/web/proxy%2F..%2F',
  '/api/v1/namespaces/default/pods/web/proxy/x/..%2F..%2F',
  '/api/v1/namespaces/default/services/web/proxy/..%2F',
  '/api/v1/namespaces/default/services/https:web:443/proxy/..%2Fmetrics',
  '/api/v1/nodes/node-1/proxy/..%2F',
  '/api/v1/namespaces/default/pods/web/proxy/..',
  '/api/v1/namespaces/default/pods/web/proxy/../',
];

/** What a browser sends for a link to the workload's page: `..%2F` survives the URL parser. */
const LINK = '/api/v1/namespaces/default/pods/web/proxy/..%2F';

t.test('against the dev upstream, which serves a workload page on every proxy subresource', async (t) => {
  const { stack, proxy, own, context, session } = await signedInVictim(t);

  t.test("the victim opens a link to the workload's page", async (t) => {
    const page = await context.newPage();
    let outcome: unknown;
    let sentPath = '';
    page.on('request', (r) => {
      if (r.isNavigationRequest()) sentPath ||= new URL(r.url()).pathname;
    });
    const seen = await observe(stack.upstream, async () => {
      const response = await page.goto(`${proxy}${LINK}`);
      outcome = await page.evaluate('window.outcome');
      return { status: response?.status() ?? 0, body: (await response?.text()) ?? '' };
    });
    t.equal(sentPath, LINK, 'the browser sent the path as written (precondition)');
    t.equal(outcome, undefined, "no script of the workload ran on the proxy's origin");
    const harmful = seen.upstreamReceived.filter((r) => r.startsWith('POST ') || (r.includes('/proxy') && r.endsWith(` as ${USER}`)));
    t.same(harmful, [], 'the upstream received neither the page request nor the POST as the person');
    // Chromium asks for /favicon.ico after the refused page, with the cookie: harmless, and its own request.
    const pageLoad = { ...seen, upstreamReceived: seen.upstreamReceived.filter((r) => !r.startsWith('GET /favicon.ico ')) };
    t.same(pageLoad, FORBIDDEN_BEFORE_UPSTREAM, 'the page load is refused before the upstream');
    await page.close();
  });

  t.test('raw requests with the session cookie', async (t) => {
    for (const path of SPELLINGS) {
      for (const [method, lines, body] of [
        ['GET', [], ''],
        ['POST', [`Origin: ${own}`, 'Content-Type: application/json'], '{"kind":"ConfigMap"}'],
      ] as const) {
        const seen = await observe(stack.upstream, () => rawRequest(proxy, stack.servingCA, method, path, [...session, ...lines], body));
        t.same(seen, FORBIDDEN_BEFORE_UPSTREAM, `${method} ${path}`);
      }
      const seen = await observe(stack.upstream, () =>
        sendUpgrade(t, proxy, stack.servingCA, 'GET', path, [...websocketLines(), ...session, `Origin: ${own}`]),
      );
      t.same(seen, FORBIDDEN_BEFORE_UPSTREAM, `WebSocket upgrade ${path}`);
    }
  });
});

t.test('against the real kube-apiserver', async (t) => {
  const cluster = await startKube(t);
  if (!cluster) return;
  const stack = await startStack(t, {
    login: { dir: t.testdir() },
    configure: (base) => ({ ...base, upstream: { ...base.upstream, url: cluster.url, caFile: cluster.caFile } }),
  });
  await untilReady(stack.proxy);
  const proxy = stack.proxy.url;
  type Event = Awaited<ReturnType<typeof cluster.auditEvents>>[number] & { objectRef?: { resource?: string; subresource?: string } };
  const events = async () => (await cluster.auditEvents()) as Event[];

  t.test('kube-apiserver routes every spelling to the proxy subresource (the premise)', async (t) => {
    const bearer = [`Authorization: Bearer ${await stack.mint({ email: 'premise@example.com' })}`];
    for (const path of SPELLINGS) {
      const res = await rawRequest(proxy, stack.servingCA, 'GET', path, bearer);
      const id = res.header('audit-id');
      const event = await cluster.auditEvent((e) => e.auditID === id && e.stage === 'ResponseComplete');
      t.equal((event as Event).objectRef?.subresource, 'proxy', `${path}: kube-apiserver authorizes it as ${(event as Event).objectRef?.resource}/proxy`);
    }
  });

  t.test('no cookie-authenticated request reaches a proxy subresource', async (t) => {
    const browser = await launchBrowser(t);
    const context = await newContext(browser, t);
    const session = [`Cookie: ${SESSION_COOKIE}=${await browserLogin(context, proxy)}`];
    // kube-apiserver's audit ID is the proxy's request id: a refusal by the proxy leaves no event with it.
    const sent = new Map<string, string>();
    for (const path of SPELLINGS) {
      const res = await rawRequest(proxy, stack.servingCA, 'GET', path, session);
      sent.set(res.header('audit-id') ?? '', path);
    }
    // The control: a cookie request kube-apiserver does see, so that the audit log is known to be written.
    const control = await rawRequest(proxy, stack.servingCA, 'GET', CONFIGMAPS, session);
    await cluster.auditEvent((e) => e.auditID === control.header('audit-id') && e.stage === 'ResponseComplete');
    const all = await events();
    for (const [id, path] of sent) {
      const event = all.find((e) => e.auditID === id && e.stage === 'ResponseComplete');
      t.equal(event, undefined, `GET ${path} with the cookie never reached kube-apiserver` + (event ? ` (it did, as ${event.objectRef?.resource}/${event.objectRef?.subresource})` : ''));
    }
    const reached = all
      .filter((e) => e.user.username === USER && e.objectRef?.subresource === 'proxy' && e.stage === 'ResponseComplete')
      .map((e) => `${e.verb} ${e.requestURI} → ${e.objectRef?.resource}/proxy as ${e.user.username}`);
    t.same(reached, [], 'kube-apiserver never received a proxy-subresource request on the session cookie');
  });
});
