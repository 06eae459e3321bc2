// Which requests are long-running, against kube-apiserver's own reading (requestinfo.go's
// watch parameter, Convert_Slice_string_To_bool, BasicLongRunningRequestCheck's subresources).
import t from 'tap';
import { requestKind } from '../../src/request/long-running.js';

const kind = (target: string, upgrade = false) => {
  const url = new URL(target, 'https://x');
  return requestKind(url.pathname, url.searchParams, upgrade);
};

t.test('watch: any value of the parameter but 0 or false, as kube reads a query boolean', async (t) => {
  for (const value of ['true', '1', 'TRUE', 'yes', 'y', '', 'anything']) t.equal(kind(`/api/v1/pods?watch=${value}`), 'watch', `watch=${value}`);
  for (const value of ['0', 'false', 'FALSE', 'False']) t.equal(kind(`/api/v1/pods?watch=${value}`), 'short', `watch=${value}`);
  t.equal(kind('/api/v1/pods?watch'), 'watch', 'a bare ?watch');
  t.equal(kind('/api/v1/watch/namespaces/a/pods'), 'watch', 'the /watch/ path');
  t.equal(kind('/api/v1/pods'), 'short');
});

t.test('log: the subresource is long-running whatever the query, as kube lists it', async (t) => {
  for (const query of ['', '?follow=true', '?follow=false', '?follow=TRUE', '?tailLines=10']) t.equal(kind(`/api/v1/namespaces/a/pods/p/log${query}`), 'log', query || 'no query');
  t.equal(kind('/api/v1/namespaces/a/configmaps/log'), 'log', 'a configmap named log reads as the subresource too (kube reads it by position; the cost is a stream, not a timeout)');
});

t.test('proxy and the streaming subresources without an upgrade; upgrades', async (t) => {
  t.equal(kind('/api/v1/namespaces/a/services/s/proxy/x'), 'proxy');
  t.equal(kind('/api/v1/namespaces/a/pods/p/proxy'), 'proxy');
  t.equal(kind('/api/v1/namespaces/a/pods/p/exec'), 'proxy');
  t.equal(kind('/api/v1/namespaces/a/pods/p/exec', true), 'upgrade');
});

t.test('the path as kube reads it: percent-decoded, trailing slashes trimmed', async (t) => {
  // Found by an attack: the raw path let these pass for short requests that kube ran long.
  t.equal(kind('/api/v1/namespaces/a/pods/p/%6Cog'), 'log');
  t.equal(kind('/api/v1/namespaces/a/pods/p%2Flog'), 'log');
  t.equal(kind('/api/v1/namespaces/a/pods/p/log/'), 'log');
  t.equal(kind('/api/v1/w%61tch/namespaces/a/pods'), 'watch');
  t.equal(kind('/api/v1/namespaces/a/pods/p/%65xec'), 'proxy');
  t.equal(kind('/api/v1/namespaces/a/pods/%zz'), 'short', 'malformed encoding: the raw path (kube refuses it anyway)');
});
