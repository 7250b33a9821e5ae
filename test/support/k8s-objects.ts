// Builders for the Kubernetes objects the control plane reads, with the
// defaults a real cluster would fill in, so a test states only what it is about.
import type {
  V1Endpoint,
  V1EndpointSlice,
  V1Node,
  V1Service,
  V1ServicePort,
} from '@kubernetes/client-node';

export const XLB_CLASS = 'xlb.dev/xlb';

export interface ServiceSpec {
  name: string;
  namespace?: string;
  /** Default LoadBalancer. */
  type?: string;
  /** Default XLB_CLASS; null leaves spec.loadBalancerClass out. */
  class?: string | null;
  /** Default one unnamed TCP port 80. */
  ports?: V1ServicePort[];
  /** status.loadBalancer.ingress[].ip */
  ips?: string[];
  /** Cluster or Local (any string, to test invalid values). */
  externalTrafficPolicy?: string;
  /** None or ClientIP (any string, to test invalid values). */
  sessionAffinity?: string;
  affinityTimeoutSeconds?: number;
  sourceRanges?: string[];
  annotations?: Record<string, string>;
  created?: string;
}

export function service(s: ServiceSpec): V1Service {
  const cls = s.class === undefined ? XLB_CLASS : s.class;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: s.name,
      namespace: s.namespace ?? 'default',
      ...(s.annotations !== undefined ? { annotations: s.annotations } : {}),
      ...(s.created !== undefined ? { creationTimestamp: new Date(s.created) } : {}),
    },
    spec: {
      type: s.type ?? 'LoadBalancer',
      ...(cls !== null ? { loadBalancerClass: cls } : {}),
      ports: s.ports ?? [port(80)],
      ...(s.externalTrafficPolicy !== undefined
        ? { externalTrafficPolicy: s.externalTrafficPolicy }
        : {}),
      ...(s.sessionAffinity !== undefined ? { sessionAffinity: s.sessionAffinity } : {}),
      ...(s.affinityTimeoutSeconds !== undefined
        ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: s.affinityTimeoutSeconds } } }
        : {}),
      ...(s.sourceRanges !== undefined ? { loadBalancerSourceRanges: s.sourceRanges } : {}),
    },
    status: { loadBalancer: { ingress: (s.ips ?? []).map((ip) => ({ ip })) } },
  };
}

export function port(
  number: number,
  opts: { name?: string; protocol?: string; targetPort?: number | string } = {},
): V1ServicePort {
  return {
    port: number,
    protocol: opts.protocol ?? 'TCP',
    ...(opts.name !== undefined ? { name: opts.name } : {}),
    targetPort: opts.targetPort ?? number,
  };
}

export interface EndpointSpec {
  ip: string;
  node?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

/** An endpoint with conditions as the EndpointSlice controller writes them. */
export function endpoint(e: EndpointSpec): V1Endpoint {
  const terminating = e.terminating ?? false;
  const serving = e.serving ?? e.ready ?? true;
  const ready = e.ready ?? (serving && !terminating);
  return {
    addresses: [e.ip],
    conditions: { ready, serving, terminating },
    ...(e.node !== undefined ? { nodeName: e.node } : {}),
  };
}

export interface SliceSpec {
  service: string;
  name?: string;
  namespace?: string;
  /** IPv4 (default), IPv6 or FQDN. */
  addressType?: string;
  /** Default one unnamed TCP port 80. */
  ports?: { name?: string; port?: number; protocol?: string }[];
  endpoints: (EndpointSpec | V1Endpoint)[];
}

export function slice(s: SliceSpec): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: s.name ?? `${s.service}-${(s.addressType ?? 'IPv4').toLowerCase()}`,
      namespace: s.namespace ?? 'default',
      labels: {
        'kubernetes.io/service-name': s.service,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
    },
    addressType: s.addressType ?? 'IPv4',
    ports: (s.ports ?? [{ port: 80 }]).map((p) => ({
      ...(p.name !== undefined ? { name: p.name } : {}),
      ...(p.port !== undefined ? { port: p.port } : {}),
      protocol: p.protocol ?? 'TCP',
    })),
    endpoints: s.endpoints.map((e) => ('addresses' in e ? e : endpoint(e))),
  };
}

export interface NodeSpec {
  name: string;
  internal?: string[];
  external?: string[];
  labels?: Record<string, string>;
}

export function node(n: NodeSpec): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: n.name,
      labels: { 'kubernetes.io/hostname': n.name, ...n.labels },
    },
    status: {
      addresses: [
        ...(n.internal ?? []).map((address) => ({ type: 'InternalIP', address })),
        ...(n.external ?? []).map((address) => ({ type: 'ExternalIP', address })),
        { type: 'Hostname', address: n.name },
      ],
    },
  };
}

export { shuffled } from './shuffle.js';
