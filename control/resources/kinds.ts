// The kinds of object xlb reads, their Kubernetes types and how each is
// keyed. The store and every source agree on keys through objectKey().
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import type { BGPAdvertisement } from './bgp-advertisement.js';
import type { BGPPeer } from './bgp-peer.js';
import type { IPPool } from './ip-pool.js';

export interface ResourceTypes {
  Service: V1Service;
  EndpointSlice: V1EndpointSlice;
  Node: V1Node;
  IPPool: IPPool;
  BGPPeer: BGPPeer;
  BGPAdvertisement: BGPAdvertisement;
}

export type ResourceKind = keyof ResourceTypes;

export const RESOURCE_KINDS: readonly ResourceKind[] = [
  'Service',
  'EndpointSlice',
  'Node',
  'IPPool',
  'BGPPeer',
  'BGPAdvertisement',
];

export interface KindInfo {
  apiVersion: string;
  namespaced: boolean;
}

export const KIND_INFO: Readonly<Record<ResourceKind, KindInfo>> = {
  Service: { apiVersion: 'v1', namespaced: true },
  EndpointSlice: { apiVersion: 'discovery.k8s.io/v1', namespaced: true },
  Node: { apiVersion: 'v1', namespaced: false },
  IPPool: { apiVersion: 'xlb.dev/v1alpha1', namespaced: false },
  BGPPeer: { apiVersion: 'xlb.dev/v1alpha1', namespaced: false },
  BGPAdvertisement: { apiVersion: 'xlb.dev/v1alpha1', namespaced: false },
};

export class ObjectKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ObjectKeyError';
  }
}

/** `namespace/name` for namespaced kinds, `name` for cluster-scoped ones. */
export function objectKey<K extends ResourceKind>(kind: K, obj: ResourceTypes[K]): string {
  const name = obj.metadata?.name;
  if (typeof name !== 'string' || name === '')
    throw new ObjectKeyError(`a ${kind} without metadata.name cannot be keyed`);
  if (!KIND_INFO[kind].namespaced) return name;
  const namespace = obj.metadata?.namespace;
  if (typeof namespace !== 'string' || namespace === '')
    throw new ObjectKeyError(`${kind} '${name}' has no metadata.namespace`);
  return `${namespace}/${name}`;
}
