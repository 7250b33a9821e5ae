// Whether this node should announce each LB IP of a Service. Announce only
// where traffic can be served: under Local policy the node must hold a local
// backend (the routers then weight it by how many); under Cluster any node
// with somewhere to send the traffic will do.
import type { NodeFacts } from './nodes.js';
import type { Announcement, Family, TrafficPolicy, Unit } from './types.js';

export interface AnnounceInput {
  service: string;
  addresses: readonly { family: Family; address: string }[];
  /** The Service's units on this node (backends already filtered by policy). */
  units: readonly Unit[];
  policy: TrafficPolicy;
  /** This node; undefined when its Node object is not known. */
  node: NodeFacts | undefined;
}

export function announcements(input: AnnounceInput): Announcement[] {
  return input.addresses.map(({ family, address }) => {
    const base = { service: input.service, address, family };
    if (input.node?.excluded === true) {
      return {
        ...base,
        announce: false,
        reason: 'nodeExcluded',
        weight: 0,
        message: `node ${input.node.name} is labelled node.kubernetes.io/exclude-from-external-load-balancers`,
      };
    }
    // Distinct pods, not pod ports: a pod serving three ports is one endpoint.
    // Every backend a unit holds is ready or serving (the rest are excluded).
    const serving = new Set<string>();
    const local = new Set<string>();
    for (const unit of input.units) {
      if (unit.family !== family) continue;
      for (const b of unit.backends) {
        serving.add(b.address);
        if (b.local) local.add(b.address);
      }
    }
    if (input.policy === 'Local') {
      return local.size > 0
        ? {
            ...base,
            announce: true,
            reason: 'localEndpoints',
            weight: local.size,
            message: `${local.size} local serving endpoint${local.size === 1 ? '' : 's'} (externalTrafficPolicy Local)`,
          }
        : {
            ...base,
            announce: false,
            reason: 'noLocalEndpoints',
            weight: 0,
            message: `no local serving IPv${family} endpoint on this node (externalTrafficPolicy Local)`,
          };
    }
    return serving.size > 0
      ? {
          ...base,
          announce: true,
          reason: 'hasEndpoints',
          weight: 1,
          message: `${serving.size} serving IPv${family} endpoint${serving.size === 1 ? '' : 's'} reachable from this node`,
        }
      : {
          ...base,
          announce: false,
          reason: 'noEndpoints',
          weight: 0,
          message: `no serving IPv${family} endpoint reachable from this node`,
        };
  });
}
