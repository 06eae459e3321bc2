/**
 * What the bench upstream answers with: a Pod as kube-apiserver serialises it
 * (about 1 KiB of JSON), and the request paths every scenario uses.
 */

export const POD_PATH = '/api/v1/namespaces/default/pods/bench-0';
export const WATCH_PATH = '/api/v1/namespaces/default/pods?watch=true&allowWatchBookmarks=true';
export const EXEC_PATH = '/api/v1/namespaces/default/pods/bench-0/exec?command=sh&stdin=true&stdout=true&stderr=true';
export const PORTFORWARD_PATH = '/api/v1/namespaces/default/pods/bench-0/portforward?ports=8080';

/** Scenario 7's reviewers in the upstream: kube-apiserver's TokenReview API, and a token webhook's own URL. */
export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
export const WEBHOOK_PATH = '/bench/token-webhook';
/** Tokens both reviewers authenticate; any other they answer "not authenticated". */
export const REVIEWED_PREFIX = 'kfp-bench-reviewed.';
/** Tokens the upstream accepts itself over a connection without the front-proxy certificate (passthrough). */
export const PASSTHROUGH_PREFIX = 'kfp-bench-passthrough.';

/** A realistic Pod object; `resourceVersion` is what watch events carry their timestamp in. */
export function pod(name: string, resourceVersion: string): object {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name,
      namespace: 'default',
      uid: '3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b',
      resourceVersion,
      creationTimestamp: '2025-01-01T00:00:00Z',
      labels: { app: 'bench', 'pod-template-hash': '5d8f7c6b9' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'bench-5d8f7c6b9', uid: '9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4', controller: true, blockOwnerDeletion: true },
      ],
    },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'registry.k8s.io/pause:3.10',
          ports: [{ containerPort: 8080, protocol: 'TCP' }],
          resources: { requests: { cpu: '10m', memory: '16Mi' } },
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      nodeName: 'kind-control-plane',
      schedulerName: 'default-scheduler',
    },
    status: {
      phase: 'Running',
      conditions: [
        { type: 'Ready', status: 'True', lastTransitionTime: '2025-01-01T00:00:05Z' },
        { type: 'ContainersReady', status: 'True', lastTransitionTime: '2025-01-01T00:00:05Z' },
      ],
      hostIP: '172.18.0.2',
      podIP: '10.244.0.5',
      startTime: '2025-01-01T00:00:00Z',
      containerStatuses: [
        { name: 'app', ready: true, restartCount: 0, image: 'registry.k8s.io/pause:3.10', started: true, state: { running: { startedAt: '2025-01-01T00:00:04Z' } } },
      ],
      qosClass: 'Burstable',
    },
  };
}
