import t from 'tap';
import { parseDuration } from '../../src/config/duration.js';
import { formatPath } from '../../src/config/errors.js';
import { patternOf } from '../../src/config/keys.js';
import { describeValue, unknownKeyMessage } from '../../src/config/problems.js';
import { isLoopbackHost } from '../../src/config/schema.js';

t.test('unknown keys: a near sibling, a key from elsewhere, or the list', async (t) => {
  t.equal(unknownKeyMessage('upstream', 'clientCertfile'), 'unknown key; did you mean "clientCertFile"?');
  t.equal(unknownKeyMessage('authentication.jwt[].issuer', 'audience'), 'unknown key; did you mean "audiences"?');
  t.equal(unknownKeyMessage('upstream', 'certFile'), 'unknown key here; "certFile" belongs at listen.tls.certFile');
  t.match(unknownKeyMessage('audit', 'rotate'), /^unknown key; expected one of: path, format$/);
  t.match(unknownKeyMessage('', 'kind'), /not a kube-apiserver AuthenticationConfiguration/);
  t.match(unknownKeyMessage('authentication.jwt[].issuer', 'egressSelectorType'), /egress selector/);
  t.equal(unknownKeyMessage('authentication.session.cookie', 'idletimeout'), 'unknown key; did you mean "idleTimeout"?');
});

t.test('paths and patterns', async (t) => {
  t.equal(formatPath(['authentication', 'jwt', 0, 'issuer', 'url']), 'authentication.jwt[0].issuer.url');
  t.equal(formatPath([]), '');
  t.equal(patternOf(['authentication', 'jwt', 3, 'claimValidationRules', 0, 'claim']), 'authentication.jwt[].claimValidationRules[].claim');
});

t.test('values are shown short and typed', async (t) => {
  t.equal(describeValue(null), 'an empty value');
  t.equal(describeValue([1]), 'a list');
  t.equal(describeValue({}), 'a mapping');
  t.equal(describeValue('x'.repeat(50)), `"${'x'.repeat(40)}…"`);
  t.equal(describeValue(3), '3');
});

t.test('durations', async (t) => {
  t.equal(parseDuration('0'), 0);
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('1h30m'), 5_400_000);
  t.equal(parseDuration('1.5s'), 1_500);
  for (const bad of ['', '10', '5x', '-1s', '1s ', 's']) t.equal(parseDuration(bad), undefined, JSON.stringify(bad));
});

t.test('loopback hosts', async (t) => {
  for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '[::1]']) t.ok(isLoopbackHost(host), host);
  for (const host of ['10.0.0.1', '128.0.0.1', 'localhost.example.com', '[::]', '0.0.0.0', 'example.com']) t.notOk(isLoopbackHost(host), host);
});
