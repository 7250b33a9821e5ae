// The manifest files of a standalone agent's directory, as YAML text: a
// LoadBalancer Service with its address in status, its EndpointSlices, and
// Nodes. Tests write them, edit them and break them.
import { stringify } from 'yaml';

export const XLB_CLASS = 'xlb.dev/xlb';

export interface ServiceManifest {
  name: string;
  namespace?: string;
  vips: string[];
  ports: { name: string; port: number; targetPort: number; protocol?: 'TCP' | 'UDP' }[];
  externalTrafficPolicy?: 'Cluster' | 'Local';
}

export function serviceYaml(s: ServiceManifest): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, namespace: s.namespace ?? 'default' },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: XLB_CLASS,
      externalTrafficPolicy: s.externalTrafficPolicy ?? 'Cluster',
      ports: s.ports.map((p) => ({
        name: p.name,
        protocol: p.protocol ?? 'TCP',
        port: p.port,
        targetPort: p.targetPort,
      })),
    },
    status: { loadBalancer: { ingress: s.vips.map((ip) => ({ ip })) } },
  });
}

export interface SliceManifest {
  name: string;
  service: string;
  namespace?: string;
  family: 4 | 6;
  ports: { name: string; port: number; protocol?: 'TCP' | 'UDP' }[];
  endpoints: { ip: string; node: string; pod: string; ready?: boolean }[];
}

export function sliceYaml(s: SliceManifest): string {
  return stringify({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: s.name,
      namespace: s.namespace ?? 'default',
      labels: { 'kubernetes.io/service-name': s.service },
    },
    addressType: s.family === 4 ? 'IPv4' : 'IPv6',
    ports: s.ports.map((p) => ({ name: p.name, protocol: p.protocol ?? 'TCP', port: p.port })),
    endpoints: s.endpoints.map((e) => ({
      addresses: [e.ip],
      nodeName: e.node,
      conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: false },
      targetRef: { kind: 'Pod', namespace: s.namespace ?? 'default', name: e.pod },
    })),
  });
}

export function nodeYaml(name: string, internal: string[]): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: {
      addresses: [
        ...internal.map((address) => ({ type: 'InternalIP', address })),
        { type: 'Hostname', address: name },
      ],
    },
  });
}

/** Several documents in one file. */
export const documents = (...docs: string[]): string => docs.join('---\n');
