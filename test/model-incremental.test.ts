// The incremental node model against deriveNode: random sequences of
// changes to a store, and after each burst the cache's model must equal a
// fresh deriveNode of the same store, hand out the very same (frozen)
// objects for what did not change, and name exactly the Services that did.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

import {
  deriveNode,
  NodeModelCache,
  type ModelSource,
  type NodeModel,
  type Unit,
} from '../control/model/index.js';
import { ClusterStore, type StoreChanges } from '../control/store/cluster-store.js';
import { endpoint, node, port, service, slice, XLB_CLASS } from './support/k8s-objects.js';

const THIS_NODE = 'node-a';

/** mulberry32: the same sequence for the same seed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A small world, so changes collide: few names, shared VIPs, endpoints moving between nodes. */
function world(rand: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const chance = (p: number): boolean => rand() < p;
  const names = ['web', 'api', 'dns', 'db', 'cache', 'mail'];
  const namespaces = ['default', 'shop'];
  const vips4 = ['192.0.2.10', '192.0.2.11', '192.0.2.12'];
  const vips6 = ['2001:db8::10', '2001:db8::11'];
  const nodes = ['node-a', 'node-b', 'node-c'];
  const pods4 = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.1.1', 'not-an-ip'];
  const pods6 = ['fd00::1', 'fd00::2', 'fd00::3'];
  const times = ['2024-01-01T00:00:00Z', '2024-06-01T00:00:00Z', undefined];

  const svc = (): V1Service => {
    const ips = [
      ...(chance(0.8) ? [pick(vips4)] : []),
      ...(chance(0.3) ? [pick(vips6)] : []),
      ...(chance(0.1) ? [pick(vips4)] : []),
    ];
    const created = pick(times);
    return service({
      name: pick(names),
      namespace: pick(namespaces),
      class: chance(0.9) ? XLB_CLASS : 'other.example/lb',
      ips,
      ports: chance(0.7)
        ? [port(80, { name: 'http', targetPort: 8080 })]
        : [
            port(80, { name: 'http', targetPort: 8080 }),
            port(53, { name: 'dns', protocol: 'UDP' }),
          ],
      externalTrafficPolicy: chance(0.3) ? 'Local' : 'Cluster',
      ...(chance(0.2) ? { sessionAffinity: 'ClientIP' } : {}),
      ...(chance(0.15) ? { sourceRanges: ['198.51.100.0/24'] } : {}),
      ...(created !== undefined ? { created } : {}),
    });
  };
  const eps = (family: 4 | 6) =>
    Array.from({ length: Math.floor(rand() * 4) }, () =>
      endpoint({
        ip: pick(family === 4 ? pods4 : pods6),
        ...(chance(0.9) ? { node: pick([...nodes, 'node-gone']) } : {}),
        ready: chance(0.8),
        ...(chance(0.2) ? { terminating: true, serving: true } : {}),
      }),
    );
  const slc = (): V1EndpointSlice => {
    const family = chance(0.8) ? 4 : 6;
    return slice({
      service: pick(names),
      name: `${pick(names)}-${pick(['x', 'y'])}`,
      namespace: pick(namespaces),
      addressType: family === 4 ? 'IPv4' : 'IPv6',
      ports: chance(0.8)
        ? [{ name: 'http', port: 8080 }]
        : [
            { name: 'http', port: 8080 },
            { name: 'dns', port: 5353, protocol: 'UDP' },
          ],
      endpoints: eps(family),
    });
  };
  const nd = (): V1Node => {
    const n = pick(nodes);
    const k = nodes.indexOf(n) + 1;
    return node({
      name: n,
      internal: [
        ...(chance(0.9) ? [`198.51.100.${k + (chance(0.2) ? 10 : 0)}`] : []),
        ...(chance(0.5) ? [`2001:db8:f::${k}`] : []),
      ],
      labels: chance(0.15) ? { 'node.kubernetes.io/exclude-from-external-load-balancers': '' } : {},
    });
  };
  return { svc, slc, nd, pick, chance };
}

function source(store: ClusterStore): ModelSource {
  return {
    service: (k) => store.get('Service', k),
    endpointSlice: (k) => store.get('EndpointSlice', k),
    services: () => store.services(),
    endpointSlices: () => store.list('EndpointSlice'),
    nodes: () => store.nodes(),
  };
}

function fresh(store: ClusterStore): NodeModel {
  return deriveNode({
    services: store.services(),
    endpointSlices: store.list('EndpointSlice'),
    nodes: store.nodes(),
    nodeName: THIS_NODE,
  });
}

const key = (o: { metadata?: { namespace?: string; name?: string } }): string =>
  o.metadata?.namespace === undefined
    ? o.metadata!.name!
    : `${o.metadata.namespace}/${o.metadata.name}`;

describe('model: incremental node model', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`equals deriveNode after every burst of random changes (seed ${seed})`, async () => {
      const rand = random(seed);
      const w = world(rand);
      const store = new ClusterStore();
      let pending: StoreChanges | undefined;
      store.subscribe((c) => (pending = c));
      for (let i = 0; i < 6; i++) store.apply('Service', w.svc());
      for (let i = 0; i < 6; i++) store.apply('EndpointSlice', w.slc());
      for (let i = 0; i < 3; i++) store.apply('Node', w.nd());
      await Promise.resolve();
      const cache = new NodeModelCache(THIS_NODE);
      let model = cache.rebuild(source(store)).model;
      expect(model).toEqual(fresh(store));
      pending = undefined;

      for (let step = 0; step < 150; step++) {
        const burst = 1 + Math.floor(rand() * 3);
        for (let b = 0; b < burst; b++) {
          const r = rand();
          if (r < 0.3) store.apply('Service', w.svc());
          else if (r < 0.4) {
            const s = store.services();
            if (s.length > 0) store.delete('Service', key(w.pick(s)));
          } else if (r < 0.75) store.apply('EndpointSlice', w.slc());
          else if (r < 0.85) {
            const s = store.list('EndpointSlice');
            if (s.length > 0) store.delete('EndpointSlice', key(w.pick(s)));
          } else if (r < 0.97) store.apply('Node', w.nd());
          else {
            const n = store.nodes();
            if (n.length > 0) store.delete('Node', key(w.pick(n)));
          }
        }
        await Promise.resolve();
        const before = model;
        const update = cache.update(source(store), pending ?? emptyChanges());
        pending = undefined;
        model = update.model;
        expect(model, `step ${step}`).toEqual(fresh(store));

        // The same object for every unit that did not change, and all frozen.
        const old = new Map(before.units.map((u) => [u.key, u]));
        for (const u of model.units) {
          const o = old.get(u.key);
          if (o !== undefined && JSON.stringify(o) === JSON.stringify(u)) expect(u).toBe(o);
          expect(Object.isFrozen(u) && Object.isFrozen(u.backends)).toBe(true);
        }
        // Exactly the Services whose units, announcements or decisions moved are named.
        const named = new Set(update.changed.map((c) => c.service));
        const servicesOf = (m: NodeModel) =>
          new Set([
            ...m.units.map((u) => u.service),
            ...m.announcements.map((a) => a.service),
            ...m.decisions.map((d) => d.service),
          ]);
        for (const s of new Set([...servicesOf(before), ...servicesOf(model)])) {
          const part = (m: NodeModel) =>
            JSON.stringify([
              m.units.filter((u: Unit) => u.service === s),
              m.announcements.filter((a) => a.service === s),
              m.decisions.filter((d) => d.service === s),
            ]);
          if (part(before) !== part(model)) expect(named.has(s), `${s} at step ${step}`).toBe(true);
        }
      }
    });
  }

  it('leaves every other Service alone when one EndpointSlice changes', () => {
    const store = new ClusterStore();
    const services = Array.from({ length: 50 }, (_, i) =>
      service({ name: `s${i}`, ips: [`192.0.2.${i + 1}`] }),
    );
    const slices = services.map((_, i) =>
      slice({ service: `s${i}`, endpoints: [{ ip: `10.0.0.${i + 1}`, node: THIS_NODE }] }),
    );
    store.replaceAll({
      Service: services,
      EndpointSlice: slices,
      Node: [node({ name: THIS_NODE, internal: ['198.51.100.1'] })],
    });
    const cache = new NodeModelCache(THIS_NODE);
    const first = cache.rebuild(source(store)).model;
    store.apply(
      'EndpointSlice',
      slice({
        service: 's7',
        endpoints: [
          { ip: '10.0.0.8', node: THIS_NODE },
          { ip: '10.0.9.9', node: THIS_NODE },
        ],
      }),
    );
    const update = cache.update(source(store), {
      EndpointSlice: new Set(['default/s7-ipv4']),
    });
    expect(update.derived).toBe(1);
    expect(update.changed.map((c) => c.service)).toEqual(['default/s7']);
    const changed = update.model.units.filter((u, i) => u !== first.units[i]);
    expect(changed.map((u) => u.key)).toEqual(['default/s7:80/TCP/v4']);
    expect(update.model).toEqual(fresh(store));

    // A Node no endpoint runs on changes nothing; this node changes everything it decides.
    store.apply('Node', node({ name: 'node-z', internal: ['198.51.100.9'] }));
    expect(cache.update(source(store), { Node: new Set(['node-z']) }).derived).toBe(0);
    store.apply(
      'Node',
      node({
        name: THIS_NODE,
        internal: ['198.51.100.1'],
        labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': 'true' },
      }),
    );
    const excluded = cache.update(source(store), { Node: new Set([THIS_NODE]) });
    expect(excluded.derived).toBe(50);
    expect(excluded.changed).toHaveLength(50);
    // Announcements changed, units did not: the same unit objects.
    expect(excluded.model.units.every((u, i) => u === update.model.units[i])).toBe(true);
    expect(excluded.model).toEqual(fresh(store));
  });
});

function emptyChanges(): StoreChanges {
  return { Service: new Set(), EndpointSlice: new Set(), Node: new Set(), IPPool: new Set() };
}
