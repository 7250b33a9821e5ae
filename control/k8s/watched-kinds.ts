// The kinds the Kubernetes source lists and watches, and where the API
// server serves them. permissions.ts derives the read rules from this table,
// so the chart cannot forget a kind the source starts to watch.
import { BGPADVERTISEMENT_API_VERSION } from '../resources/bgp-advertisement.js';
import { BGPPEER_API_VERSION } from '../resources/bgp-peer.js';
import { IPPOOL_API_VERSION } from '../resources/ip-pool.js';
import { KIND_INFO, type ResourceKind } from '../resources/kinds.js';

/** The store's kinds, plus Namespaces (only their labels, for pools' namespaceSelector). */
export type SourceKind = ResourceKind | 'Namespace';

/** What the source watches by default. */
export const SOURCE_KINDS: readonly SourceKind[] = [
  'Service',
  'EndpointSlice',
  'Node',
  'IPPool',
  'Namespace',
];

/** BGP configuration: watched when the agent speaks BGP (pass them in `kinds`). */
export const BGP_SOURCE_KINDS: readonly SourceKind[] = ['BGPPeer', 'BGPAdvertisement'];

/** Every kind the source can watch. */
export const ALL_SOURCE_KINDS: readonly SourceKind[] = [...SOURCE_KINDS, ...BGP_SOURCE_KINDS];

export interface WatchedKind {
  kind: SourceKind;
  apiVersion: string;
  /** API group; '' for core. */
  group: string;
  /** Plural resource name. */
  resource: string;
  namespaced: boolean;
  /** Every object of the kind, in all namespaces. */
  path: string;
  /** What to do when the server does not serve the kind (404). */
  whenMissing: string;
  /**
   * Being in sync does not wait for this kind: without its CRD the rest of
   * xlb works (BGP just has no peers), so a missing CRD must not hold
   * readiness back.
   */
  optional: boolean;
}

function watched(
  kind: SourceKind,
  apiVersion: string,
  resource: string,
  namespaced: boolean,
  whenMissing: string,
  optional = false,
): WatchedKind {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const path = group === '' ? `/api/${apiVersion}/${resource}` : `/apis/${apiVersion}/${resource}`;
  return { kind, apiVersion, group, resource, namespaced, path, whenMissing, optional };
}

const BUILTIN = 'the API server is older than xlb supports (Kubernetes 1.21 or later is needed)';

export const WATCHED_KINDS: Readonly<Record<SourceKind, WatchedKind>> = {
  Service: watched('Service', KIND_INFO.Service.apiVersion, 'services', true, BUILTIN),
  EndpointSlice: watched(
    'EndpointSlice',
    KIND_INFO.EndpointSlice.apiVersion,
    'endpointslices',
    true,
    BUILTIN,
  ),
  Node: watched('Node', KIND_INFO.Node.apiVersion, 'nodes', false, BUILTIN),
  IPPool: watched(
    'IPPool',
    IPPOOL_API_VERSION,
    'ippools',
    false,
    'the IPPool CustomResourceDefinition (ippools.xlb.dev) is not installed: ' +
      'apply charts/xlb/crds/ippool.yaml (helm install does); no LoadBalancer addresses ' +
      'are allocated until it is',
  ),
  Namespace: watched('Namespace', 'v1', 'namespaces', false, BUILTIN),
  BGPPeer: watched(
    'BGPPeer',
    BGPPEER_API_VERSION,
    'bgppeers',
    false,
    'the BGPPeer CustomResourceDefinition (bgppeers.xlb.dev) is not installed: ' +
      'apply charts/xlb/crds/bgppeer.yaml (helm install does); no BGP sessions run until it is',
    true,
  ),
  BGPAdvertisement: watched(
    'BGPAdvertisement',
    BGPADVERTISEMENT_API_VERSION,
    'bgpadvertisements',
    false,
    'the BGPAdvertisement CustomResourceDefinition (bgpadvertisements.xlb.dev) is not ' +
      'installed: apply charts/xlb/crds/bgpadvertisement.yaml (helm install does); ' +
      'no addresses are announced over BGP until it is',
    true,
  ),
};
