// Programs a Service into every testbed node's maps the way the control plane
// will: the same frontends, backends and table on every node, each backend
// marked local on the node that runs its pod.
import type { L4Proto } from '../../control/datapath/maps.js';
import type { Testbed } from '../../control/topology/testbed.js';

export interface TestBackend {
  id: number;
  pod: string;
  port: number;
  state?: 'active' | 'terminating';
}

export interface TestService {
  id: number;
  vips: string[];
  port: number;
  proto: L4Proto;
  backends: TestBackend[];
  /** Table size (prime); slots are dealt round-robin over the active backends. */
  m?: number;
}

/** Round-robin table over the active backends (the real Maglev builder comes with the control plane). */
export function roundRobinTable(backendIds: readonly number[], m: number): number[] {
  if (backendIds.length === 0) throw new Error('a table needs at least one active backend');
  return Array.from({ length: m }, (_, i) => backendIds[i % backendIds.length]!);
}

export function applyService(bed: Testbed, svc: TestService): void {
  const active = svc.backends.filter((b) => (b.state ?? 'active') === 'active').map((b) => b.id);
  for (const node of Object.values(bed.nodes)) {
    const maps = node.datapath.maps;
    for (const b of svc.backends) {
      const pod = bed.pod(b.pod);
      for (const family of [4, 6] as const) {
        const podNode = bed.nodes[pod.node];
        maps.setBackend(b.id + (family === 6 ? 1000 : 0), {
          address: family === 4 ? pod.v4 : pod.v6,
          port: b.port,
          nodeAddress: family === 4 ? podNode.v4 : podNode.v6,
          state: b.state ?? 'active',
          local: pod.node === node.name,
        });
      }
    }
    for (const vip of svc.vips) {
      const v6 = vip.includes(':');
      maps.setVip(vip, 1);
      const id = svc.id + (v6 ? 1000 : 0);
      maps.setFrontend({ vip, port: svc.port, proto: svc.proto }, { id });
      maps.installMaglevTable(
        id,
        roundRobinTable(
          active.map((b) => b + (v6 ? 1000 : 0)),
          svc.m ?? 251,
        ),
      );
    }
  }
}
