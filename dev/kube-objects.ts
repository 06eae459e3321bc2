/**
 * The few Kubernetes API objects the dev upstream answers with: enough for
 * kubectl's discovery, `auth whoami`, `get pods` (and `-w`) and `exec` to work,
 * and deterministic so tests can compare bodies.
 */
import { createHash } from 'node:crypto';
import type { UserInfo } from './requestheader.js';

/** A Kubernetes Status (always a failure here: successes return objects). */
export function status(code: number, reason: string, message: string): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** What kube-apiserver answers a request it could not authenticate. */
export const unauthorized = () => status(401, 'Unauthorized', 'Unauthorized');
/** What kube-apiserver answers for a path it does not serve. */
export const notFound = () => status(404, 'NotFound', 'the server could not find the requested resource');

/** GET /version */
export const version = {
  major: '1',
  minor: '33',
  gitVersion: 'v1.33.0-kube-front-proxy-dev',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.24.0',
  compiler: 'gc',
  platform: 'linux/amd64',
};

/** GET /api */
export const apiVersions = (serverAddress: string) => ({
  kind: 'APIVersions',
  versions: ['v1'],
  serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
});

const authnGroup = {
  name: 'authentication.k8s.io',
  versions: [
    { groupVersion: 'authentication.k8s.io/v1', version: 'v1' },
    { groupVersion: 'authentication.k8s.io/v1beta1', version: 'v1beta1' },
  ],
  preferredVersion: { groupVersion: 'authentication.k8s.io/v1', version: 'v1' },
};

/** GET /apis */
export const apiGroupList = { kind: 'APIGroupList', apiVersion: 'v1', groups: [authnGroup] };

/** GET /apis/authentication.k8s.io */
export const authnAPIGroup = { kind: 'APIGroup', apiVersion: 'v1', ...authnGroup };

/** GET /api/v1 */
export const coreResources = {
  kind: 'APIResourceList',
  groupVersion: 'v1',
  resources: [
    { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list', 'watch'], shortNames: ['po'] },
    { name: 'pods/attach', singularName: '', namespaced: true, kind: 'PodAttachOptions', verbs: ['create', 'get'] },
    { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
    { name: 'pods/portforward', singularName: '', namespaced: true, kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
  ],
};

/** GET /apis/authentication.k8s.io/{v1,v1beta1} */
export const authnResources = (groupVersion: string) => ({
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion,
  resources: [{ name: 'selfsubjectreviews', singularName: 'selfsubjectreview', namespaced: false, kind: 'SelfSubjectReview', verbs: ['create'] }],
});

/**
 * The answer to POST selfsubjectreviews: the user as the requestheader
 * authenticator built it. Empty fields are left out, as Go's omitempty does.
 * A real kube-apiserver would also append the group `system:authenticated`;
 * this one does not, so a test sees exactly the identity the proxy sent.
 */
export function selfSubjectReview(groupVersion: string, user: UserInfo): object {
  return {
    kind: 'SelfSubjectReview',
    apiVersion: groupVersion,
    metadata: { creationTimestamp: null },
    status: {
      userInfo: {
        username: user.username,
        ...(user.uid !== undefined && { uid: user.uid }),
        ...(user.groups.length > 0 && { groups: user.groups }),
        ...(Object.keys(user.extra).length > 0 && { extra: user.extra }),
      },
    },
  };
}

const uidOf = (text: string) => {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};

/** A running pod of about 1 KiB of JSON, the same every time for the same arguments. */
export function pod(namespace: string, name: string, resourceVersion = '1000'): Record<string, unknown> {
  const started = '2025-01-01T00:00:00Z';
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name,
      namespace,
      uid: uidOf(`${namespace}/${name}`),
      resourceVersion,
      creationTimestamp: started,
      labels: { app: 'demo', 'app.kubernetes.io/name': 'demo', 'pod-template-hash': '5d8f7b9c4d' },
      annotations: { 'kube-front-proxy.dev/note': 'served by the kube-front-proxy dev upstream; not a real pod' },
    },
    spec: {
      containers: [
        {
          name: 'main',
          image: 'registry.k8s.io/pause:3.10',
          ports: [{ containerPort: 8080, protocol: 'TCP' }],
          resources: { requests: { cpu: '10m', memory: '16Mi' } },
          terminationMessagePath: '/dev/termination-log',
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      restartPolicy: 'Always',
      nodeName: 'dev-node',
      serviceAccountName: 'default',
    },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: started }],
      hostIP: '10.0.0.10',
      podIP: '10.244.0.10',
      startTime: started,
      containerStatuses: [
        {
          name: 'main',
          ready: true,
          started: true,
          restartCount: 0,
          image: 'registry.k8s.io/pause:3.10',
          imageID: 'registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a',
          state: { running: { startedAt: started } },
        },
      ],
    },
  };
}

/** A PodList of `count` pods named demo-0, demo-1, … */
export function podList(namespace: string, count: number): object {
  return {
    kind: 'PodList',
    apiVersion: 'v1',
    metadata: { resourceVersion: '1000' },
    items: Array.from({ length: count }, (_, i) => {
      const { kind: _kind, apiVersion: _apiVersion, ...item } = pod(namespace, `demo-${i}`);
      return item;
    }),
  };
}
