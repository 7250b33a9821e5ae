// What the model needs to know about Nodes: where to tunnel to, and whether
// the node has opted out of external load balancing.
import type { V1Node } from '@kubernetes/client-node';

import { asArray, asRecord, asString, asStringMap, compareStrings } from './guards.js';
import { parseIp } from './ip.js';
import type { Family } from './types.js';

/** Presence is what counts, whatever the value (as for the cloud service controller). */
export const EXCLUDE_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

export interface NodeFacts {
  name: string;
  excluded: boolean;
  /** Tunnel destination per family: the first InternalIP, else the first ExternalIP. */
  addresses: Partial<Record<Family, string>>;
}

export type NodeIndex = ReadonlyMap<string, NodeFacts>;

export function nodeFacts(node: V1Node): NodeFacts | undefined {
  const n = asRecord(node);
  const metadata = asRecord(n?.['metadata']);
  const name = asString(metadata?.['name']);
  if (name === undefined || name === '') return undefined;
  const labels = asStringMap(metadata?.['labels']);
  const addresses: Partial<Record<Family, string>> = {};
  // InternalIP first: the node-to-node path; ExternalIP only for nodes that
  // report nothing else. Within a type, the kubelet's order (primary first).
  for (const type of ['InternalIP', 'ExternalIP']) {
    for (const entry of asArray(asRecord(n?.['status'])?.['addresses'])) {
      const a = asRecord(entry);
      if (asString(a?.['type']) !== type) continue;
      const ip = parseIp(a?.['address']);
      if (ip !== undefined && addresses[ip.family] === undefined) addresses[ip.family] = ip.address;
    }
  }
  return { name, excluded: EXCLUDE_LABEL in labels, addresses };
}

export function indexNodes(nodes: readonly V1Node[]): NodeIndex {
  const index = new Map<string, NodeFacts>();
  for (const node of asArray(nodes)) {
    const facts = nodeFacts(node as V1Node);
    if (facts === undefined) continue;
    const seen = index.get(facts.name);
    // Two objects with one name only come from a broken source; keep the same
    // one whatever the input order.
    if (seen === undefined || compareStrings(JSON.stringify(facts), JSON.stringify(seen)) < 0) {
      index.set(facts.name, facts);
    }
  }
  return index;
}
