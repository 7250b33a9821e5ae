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
    // Plain literals: one that starts with a spread gets a hidden class of
    // its own in V8, which for 10,000 Services adds up.
    const base = (
      announce: boolean,
      reason: Announcement['reason'],
      weight: number,
      message: string,
    ): Announcement => ({
      service: input.service,
      address,
      family,
      announce,
      reason,
      weight,
      message,
    });
    if (input.node?.excluded === true) {
      return base(
        false,
        'nodeExcluded',
        0,
        `node ${input.node.name} is labelled node.kubernetes.io/exclude-from-external-load-balancers`,
      );
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
        ? base(
            true,
            'localEndpoints',
            local.size,
            `${local.size} local serving endpoint${local.size === 1 ? '' : 's'} (externalTrafficPolicy Local)`,
          )
        : base(
            false,
            'noLocalEndpoints',
            0,
            `no local serving IPv${family} endpoint on this node (externalTrafficPolicy Local)`,
          );
    }
    return serving.size > 0
      ? base(
          true,
          'hasEndpoints',
          1,
          `${serving.size} serving IPv${family} endpoint${serving.size === 1 ? '' : 's'} reachable from this node`,
        )
      : base(false, 'noEndpoints', 0, `no serving IPv${family} endpoint reachable from this node`);
  });
}
