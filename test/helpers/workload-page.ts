/**
 * What a workload behind pods/…/proxy could serve on the proxy's own origin: a
 * page whose script plants a ConfigMap with whatever credentials the browser
 * attaches (kubernetes/kubernetes#10351). Shared by the tests that must see it refused.
 */
export const USER = 'demo@example.com';
export const CONFIGMAPS = '/api/v1/namespaces/default/configmaps';

export const WORKLOAD_PAGE = `<!doctype html><title>a workload</title><script>
  window.outcome = fetch(${JSON.stringify(CONFIGMAPS)}, {
    method: 'POST',
    credentials: 'include',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'planted' }, data: { by: 'a pod' } }),
  }).then((r) => 'status ' + r.status, (e) => 'failed ' + e);
</script>`;
