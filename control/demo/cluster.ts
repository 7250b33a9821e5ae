// The demo's cluster as Kubernetes objects: three nodes, a Cluster Service
// `web` over pods spread across all of them, a Local Service `edge` over pods
// on the first two, one address pool, a BGPPeer per node (its own side of the
// router, picked by node name) and the advertisement of the pool. Both cluster
// sources (a manifest directory, the API server double) serve these objects.
import { parse } from 'yaml';

import type { KubeObject } from '../apiserver-double/index.js';
import { ROUTER_AS, NODE_AS, type BfdTimers } from '../topology/bgp-router.js';
import { nodeAddresses, POD_PORTS } from '../topology/cluster.js';
import { nodeYaml, serviceYaml, sliceYaml } from '../topology/manifests.js';

export const NODE_COUNT = 3;
export const NAMESPACE = 'xlb-demo';
export const POOL_NAME = 'demo';
export const POOL_RANGE = '192.0.2.200-192.0.2.209';
/** What standalone mode writes into the Services' status (no allocator runs without Kubernetes). */
export const STANDALONE_VIPS: Readonly<Record<string, string>> = {
  web: '192.0.2.200',
  edge: '192.0.2.201',
};
/** BFD on every BGP session: a dead node's routes go in under a second. */
export const BFD: BfdTimers = { intervalMs: 300, multiplier: 3 };
export const SERVICE_PORTS = [
  { name: 'http', port: 80, targetPort: POD_PORTS.http },
  // The pods' line protocol: long-lived connections that say which pod holds them.
  { name: 'lines', port: POD_PORTS.tcp, targetPort: POD_PORTS.tcp },
] as const;

export type TrafficPolicy = 'Cluster' | 'Local';

export interface DemoService {
  name: string;
  policy: TrafficPolicy;
}

export const SERVICES: readonly DemoService[] = [
  { name: 'web', policy: 'Cluster' },
  { name: 'edge', policy: 'Local' },
];

export interface PodSpec {
  name: string;
  service: string;
  node: number;
}

export const nodeName = (i: number): string => nodeAddresses(i).name;

/**
 * `webPods` pods of `web` spread over the nodes in turn, and `edge-1`,
 * `edge-2` on the first two nodes: the Local Service has no pod on the third.
 */
export function podPlan(webPods: number): PodSpec[] {
  return [
    ...Array.from({ length: webPods }, (_, k) => ({
      name: `web-${k + 1}`,
      service: 'web',
      node: k % NODE_COUNT,
    })),
    { name: 'edge-1', service: 'edge', node: 0 },
    { name: 'edge-2', service: 'edge', node: 1 },
  ];
}

export interface PlacedPod extends PodSpec {
  v4: string;
}

/** The Service, with its address in status when one is given (standalone). */
export function serviceObject(s: DemoService, vip?: string): KubeObject {
  const obj = parse(
    serviceYaml({
      name: s.name,
      namespace: NAMESPACE,
      vips: vip === undefined ? [] : [vip],
      ports: SERVICE_PORTS.map((p) => ({ ...p })),
      externalTrafficPolicy: s.policy,
    }),
  ) as KubeObject;
  if (vip === undefined) delete obj.status;
  return obj;
}

/** The EndpointSlice the endpoint controller would write for `service` over `pods`. */
export function sliceObject(service: string, pods: readonly PlacedPod[]): KubeObject {
  return parse(
    sliceYaml({
      name: `${service}-v4`,
      service,
      namespace: NAMESPACE,
      family: 4,
      ports: SERVICE_PORTS.map((p) => ({ name: p.name, port: p.targetPort })),
      endpoints: pods
        .filter((p) => p.service === service)
        .map((p) => ({ ip: p.v4, node: nodeName(p.node), pod: p.name })),
    }),
  ) as KubeObject;
}

export function nodeObject(i: number): KubeObject {
  const a = nodeAddresses(i);
  return parse(nodeYaml(a.name, [a.v4, a.v6])) as KubeObject;
}

export function poolObject(): KubeObject {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'IPPool',
    metadata: { name: POOL_NAME },
    spec: { addresses: [POOL_RANGE], autoAssign: true, avoidBuggyIPs: false },
  };
}

/** Node i's BGP peer: its own side of the router, selected by the node's hostname label. */
export function peerObject(i: number): KubeObject {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'BGPPeer',
    metadata: { name: `tor-${nodeName(i)}` },
    spec: {
      peerAddress: nodeAddresses(i).routerV4,
      peerASN: ROUTER_AS,
      localASN: NODE_AS,
      holdTime: 9,
      connectRetryTime: 1,
      bfd: {
        enabled: true,
        minRxMs: BFD.intervalMs,
        minTxMs: BFD.intervalMs,
        detectMultiplier: BFD.multiplier,
      },
      nodeSelector: { matchLabels: { 'kubernetes.io/hostname': nodeName(i) } },
    },
  };
}

export function advertisementObject(): KubeObject {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'BGPAdvertisement',
    metadata: { name: POOL_NAME },
    spec: { ipPools: [POOL_NAME] },
  };
}

/** Everything but the Services and EndpointSlices: pool, nodes, peers, advertisement. */
export function infrastructureObjects(): KubeObject[] {
  return [
    poolObject(),
    ...Array.from({ length: NODE_COUNT }, (_, i) => nodeObject(i)),
    ...Array.from({ length: NODE_COUNT }, (_, i) => peerObject(i)),
    advertisementObject(),
  ];
}
