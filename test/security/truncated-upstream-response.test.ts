// Attack class: truncated upstream response passed as whole (upstream.http2: auto). A body
// cut off by an upstream restart or a load balancer closing the connection must reach the
// client as cut (its response fails, as over HTTP/1.1), never end cleanly: a client that
// takes a cut-off list for the whole one treats what is missing from it as deleted (found
// by the third attack on the HTTP/2 dispatcher).
import t from 'tap';
import { direct, proxiedAnswer, startRelay, startUpstream, within } from '../helpers/http2-upstream.js';

t.test('an upstream connection that ends mid-body fails the response instead of relaying it cut short as complete', async (t) => {
  // Node ends the readable side of every stream of a connection that closes; that end was
  // taken for END_STREAM, and a cut-off list went to the client as a whole one. The upstream's
  // side of the connection ends (FIN) through a relay, as an apiserver restarting would.
  const relay = await startRelay(t, () => upstream.url);
  const upstream = await startUpstream(t, {
    handle: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"kind":"PodList","items":[{"a":1},');
      setTimeout(() => relay.sockets.forEach((s) => s.end()), 100);
    },
  });
  const dispatcher = await direct(t, { ...upstream, url: `https://127.0.0.1:${relay.port}` });
  const outcome = await within(3_000, proxiedAnswer(dispatcher, '/api/v1/pods'));
  t.match(outcome, /^error: /, `the response fails (${outcome})`);
});
