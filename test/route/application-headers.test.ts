// identity: application with passAccessToken, end to end against the dev upstream
// (which records what arrived): the access token passed on is exactly the token that
// authenticated the caller, and client-sent X-Forwarded-* never reach the application.
import t from 'tap';
import { startStack, untilReady } from '../helpers/stack.js';

const stack = await startStack(t, {
  configure: (c) => ({ ...c, upstream: { url: c.upstream!.url, caFile: c.upstream!.caFile, identity: 'application', passAccessToken: true } }),
});
// The issuer's keys are fetched in the background: until then every token is refused (on Node 26, the whole test ran before).
await untilReady(stack.proxy);
const headerValues = (raw: readonly string[], name: string) => {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) out.push(raw[i + 1]);
  return out;
};

t.test('the token that authenticated, not the text after it; the client\'s own X-Forwarded-User dropped', async (t) => {
  const token = await stack.mint({ email: 'alice@example.com', groups: ['finance'] });
  const before = stack.upstream.seen.length;
  const res = await stack.fetch('/api/v1/namespaces', { headers: { authorization: `Bearer ${token} trailing-text`, 'x-forwarded-user': 'admin', 'x-auth-request-user': 'admin' } });
  await res.body.dump();
  const seen = stack.upstream.seen.slice(before).find((r) => r.url === '/api/v1/namespaces');
  t.ok(seen, 'forwarded');
  t.same(headerValues(seen!.rawHeaders, 'x-forwarded-access-token'), [token]);
  t.same(headerValues(seen!.rawHeaders, 'x-forwarded-user'), ['alice@example.com']);
  t.same(headerValues(seen!.rawHeaders, 'x-forwarded-groups'), ['oidc:finance']);
  t.same(headerValues(seen!.rawHeaders, 'x-auth-request-user'), []);
});
