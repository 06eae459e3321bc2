// The jwt[] entry schema refuses what kube-apiserver's validation.go refuses:
// several audiences without audienceMatchPolicy: MatchAny, and a discoveryURL used twice.
import t from 'tap';
import { jwtAuthenticator, jwtAuthenticatorList } from '../../src/config/jwt-schema.js';

const entry = (issuer: Record<string, unknown>) => ({ issuer: { url: 'https://a.example.com', audiences: ['kubernetes'], ...issuer }, claimMappings: { username: { claim: 'sub', prefix: '' } } });
const problems = (result: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  result.success ? [] : (result.error?.issues ?? []).map((i) => ({ path: i.path.join('.'), message: i.message }));

t.test('several audiences need audienceMatchPolicy: MatchAny (validation.go validateAudiences)', async (t) => {
  t.match(problems(jwtAuthenticator.safeParse(entry({ audiences: ['kubernetes', 'web'] }))), [
    { path: 'issuer.audienceMatchPolicy', message: /must be MatchAny for multiple audiences/ },
  ]);
  t.same(problems(jwtAuthenticator.safeParse(entry({ audiences: ['kubernetes', 'web'], audienceMatchPolicy: 'MatchAny' }))), []);
  t.same(problems(jwtAuthenticator.safeParse(entry({}))), [], 'one audience needs no policy');
  t.same(problems(jwtAuthenticator.safeParse(entry({ audienceMatchPolicy: 'MatchAny' }))), []);
});

t.test('a discoveryURL used by two entries is refused at the second (validation.go: field.Duplicate)', async (t) => {
  const discoveryURL = 'https://idp.internal/.well-known/openid-configuration';
  const list = [entry({ discoveryURL }), { ...entry({ discoveryURL }), issuer: { url: 'https://b.example.com', audiences: ['kubernetes'], discoveryURL } }];
  t.match(problems(jwtAuthenticatorList.safeParse(list)), [{ path: '1.issuer.discoveryURL', message: /Duplicate value: .*jwt\[0\]/ }]);
  t.same(problems(jwtAuthenticatorList.safeParse([entry({ discoveryURL }), entry({ url: 'https://b.example.com' })])), []);
});
