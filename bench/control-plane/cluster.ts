// A synthetic cluster for the control-plane benchmark: Services of type
// LoadBalancer (one TCP port each, an LB IP already in their status), one
// EndpointSlice of ready endpoints per Service spread over the nodes, and
// the Nodes with their InternalIPs. Benchmarking and documentation ranges
// only: VIPs from 198.18.0.0/15, pods from 10.0.0.0/8, nodes from
// 192.0.2.0/24.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import { DEFAULT_LOAD_BALANCER_CLASS } from '../../control/model/index.js';

export const NAMESPACE = 'bench';
export const THIS_NODE = 'node-0';

export interface ClusterShape {
  services: number;
  endpointsPerService: number;
  nodes: number;
}

export const serviceName = (i: number): string => `svc-${String(i).padStart(5, '0')}`;

/** The i-th VIP: 198.18.0.1 onwards (the /15 holds 131070 of them). */
export function vipOf(i: number): string {
  const n = i + 1;
  return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}

/** Endpoint j of Service i. */
export function podOf(i: number, j: number): string {
  const n = i * 16 + j + 1;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

export function nodeNameOf(k: number): string {
  return `node-${k}`;
}

export function service(i: number): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: serviceName(i), namespace: NAMESPACE, uid: `uid-${i}` },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: DEFAULT_LOAD_BALANCER_CLASS,
      externalTrafficPolicy: 'Cluster',
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    },
    status: { loadBalancer: { ingress: [{ ip: vipOf(i) }] } },
  };
}

/** Service i's slice; `readyUpTo` endpoints (from the first) are ready, the rest not. */
export function endpointSlice(i: number, shape: ClusterShape, readyUpTo?: number): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${serviceName(i)}-abcde`,
      namespace: NAMESPACE,
      labels: { 'kubernetes.io/service-name': serviceName(i) },
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: Array.from({ length: shape.endpointsPerService }, (_, j) => ({
      addresses: [podOf(i, j)],
      nodeName: nodeNameOf((i + j) % shape.nodes),
      conditions: { ready: readyUpTo === undefined || j < readyUpTo },
    })),
  };
}

export function node(k: number): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: nodeNameOf(k) },
    status: { addresses: [{ type: 'InternalIP', address: `192.0.2.${k + 1}` }] },
  };
}
