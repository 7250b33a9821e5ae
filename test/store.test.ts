// The store every derivation reads: keys, ordering, the Service -> slices
// index, and one batched notification per burst of real changes.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

import type { IPPool } from '../control/resources/ip-pool.js';
import { ObjectKeyError } from '../control/resources/kinds.js';
import { ClusterStore, StoreError, type StoreChanges } from '../control/store/cluster-store.js';

function service(name: string, namespace = 'default', port = 80): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { type: 'LoadBalancer', ports: [{ name: 'http', port, protocol: 'TCP' }] },
  };
}

function slice(name: string, serviceName: string, addresses: string[], namespace = 'default') {
  const s: V1EndpointSlice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({ addresses: [a] })),
  };
  return s;
}

function node(name: string, address: string): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    status: { addresses: [{ type: 'InternalIP', address }] },
  };
}

function pool(name: string, addresses: string[]): IPPool {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'IPPool',
    metadata: { name },
    spec: { addresses, autoAssign: true, avoidBuggyIPs: false, disabled: false },
  };
}

/** Every notification the store sends, as plain sorted arrays. */
function record(store: ClusterStore): Record<string, string[]>[] {
  const seen: Record<string, string[]>[] = [];
  store.subscribe((changes: StoreChanges) => {
    const entry: Record<string, string[]> = {};
    for (const [kind, keys] of Object.entries(changes))
      if (keys.size > 0) entry[kind] = [...keys].sort();
    seen.push(entry);
  });
  return seen;
}

/** Lets pending microtasks (the store's notification) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ClusterStore', () => {
  it('keys namespaced objects by namespace/name and cluster-scoped ones by name', () => {
    const store = new ClusterStore();
    store.apply('Service', service('web', 'shop'));
    store.apply('Node', node('node-a', '192.0.2.11'));
    store.apply('IPPool', pool('default', ['203.0.113.0/28']));
    expect(store.get('Service', 'shop/web')?.metadata?.name).toBe('web');
    expect(store.service('shop', 'web')).toBeDefined();
    expect(store.service('default', 'web')).toBeUndefined();
    expect(store.node('node-a')?.status?.addresses?.[0]?.address).toBe('192.0.2.11');
    expect(store.pool('default')?.spec.addresses).toEqual(['203.0.113.0/28']);
  });

  it('lists every kind ordered by key, whatever the order of arrival', () => {
    const store = new ClusterStore();
    for (const [ns, name] of [
      ['b', 'web'],
      ['a', 'zeta'],
      ['a', 'alpha'],
    ] as const)
      store.apply('Service', service(name, ns));
    store.apply('Node', node('node-b', '192.0.2.12'));
    store.apply('Node', node('node-a', '192.0.2.11'));
    expect(store.services().map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`)).toEqual([
      'a/alpha',
      'a/zeta',
      'b/web',
    ]);
    expect(store.nodes().map((n) => n.metadata?.name)).toEqual(['node-a', 'node-b']);
    store.delete('Node', 'node-a');
    expect(store.nodes().map((n) => n.metadata?.name)).toEqual(['node-b']);
    expect(store.pools()).toEqual([]);
  });

  it("finds a Service's EndpointSlices by the kubernetes.io/service-name label", () => {
    const store = new ClusterStore();
    store.apply('EndpointSlice', slice('web-b', 'web', ['198.51.100.2']));
    store.apply('EndpointSlice', slice('web-a', 'web', ['198.51.100.1']));
    store.apply('EndpointSlice', slice('api-a', 'api', ['198.51.100.9']));
    store.apply('EndpointSlice', slice('web-x', 'web', ['198.51.100.7'], 'other'));
    expect(store.endpointSlicesFor('default', 'web').map((s) => s.metadata?.name)).toEqual([
      'web-a',
      'web-b',
    ]);
    expect(store.endpointSlicesFor('other', 'web').map((s) => s.metadata?.name)).toEqual(['web-x']);
    // Relabelled: the slice moves to the other Service.
    store.apply('EndpointSlice', slice('web-b', 'api', ['198.51.100.2']));
    expect(store.endpointSlicesFor('default', 'web').map((s) => s.metadata?.name)).toEqual([
      'web-a',
    ]);
    expect(store.endpointSlicesFor('default', 'api').map((s) => s.metadata?.name)).toEqual([
      'api-a',
      'web-b',
    ]);
    store.delete('EndpointSlice', 'default/web-a');
    expect(store.endpointSlicesFor('default', 'web')).toEqual([]);
    expect(store.endpointSlicesFor('default', 'nothing')).toEqual([]);
  });

  it('sends one notification for a burst of applies, with the changed keys per kind', async () => {
    const store = new ClusterStore();
    const seen = record(store);
    store.apply('Service', service('web'));
    store.apply('Service', service('api'));
    store.apply('Service', service('web', 'default', 8080));
    store.apply('Node', node('node-a', '192.0.2.11'));
    store.delete('Service', 'default/api');
    expect(seen).toEqual([]); // not before the burst ends
    await settle();
    expect(seen).toEqual([{ Service: ['default/api', 'default/web'], Node: ['node-a'] }]);
    store.apply('IPPool', pool('default', ['203.0.113.0/28']));
    await settle();
    expect(seen).toHaveLength(2);
    expect(seen[1]).toEqual({ IPPool: ['default'] });
  });

  it('does not notify when nothing changed', async () => {
    const store = new ClusterStore();
    store.apply('Service', service('web'));
    await settle();
    const seen = record(store);
    // Equal content: a fresh object, a class-like instance, an explicit undefined.
    expect(store.apply('Service', service('web'))).toBe(false);
    // (The client library hands out class instances; the store keeps plain copies.)
    const instance = Object.assign(
      Object.create({ fromTheClientLibrary: true }) as V1Service,
      service('web'),
    );
    expect(store.apply('Service', instance)).toBe(false);
    expect(store.apply('Service', { ...service('web'), status: undefined })).toBe(false);
    expect(store.delete('Service', 'default/nothing')).toBe(false);
    store.replaceAll({ Service: [service('web')] });
    await settle();
    expect(seen).toEqual([]);
    expect(store.apply('Service', service('web', 'default', 81))).toBe(true);
    await settle();
    expect(seen).toEqual([{ Service: ['default/web'] }]);
  });

  it('replaceAll adds, changes and removes in one notification and leaves other kinds alone', async () => {
    const store = new ClusterStore();
    store.apply('Service', service('keep'));
    store.apply('Service', service('change'));
    store.apply('Service', service('remove'));
    store.apply('Node', node('node-a', '192.0.2.11'));
    await settle();
    const seen = record(store);
    store.replaceAll({
      Service: [service('keep'), service('change', 'default', 8080), service('add')],
      IPPool: [pool('default', ['203.0.113.0/28'])],
    });
    await settle();
    expect(seen).toEqual([
      {
        Service: ['default/add', 'default/change', 'default/remove'],
        IPPool: ['default'],
      },
    ]);
    expect(store.services().map((s) => s.metadata?.name)).toEqual(['add', 'change', 'keep']);
    expect(store.nodes()).toHaveLength(1); // Node was not in the snapshot
    store.replaceAll({ Node: [] });
    expect(store.nodes()).toEqual([]);
  });

  it('rejects a snapshot holding the same object twice, changing nothing', async () => {
    const store = new ClusterStore();
    store.apply('Service', service('web'));
    await settle();
    const seen = record(store);
    expect(() =>
      store.replaceAll({ Node: [], Service: [service('api'), service('api', 'default', 81)] }),
    ).toThrow(StoreError);
    await settle();
    expect(seen).toEqual([]);
    expect(store.services().map((s) => s.metadata?.name)).toEqual(['web']);
  });

  it('refuses objects it cannot key', () => {
    const store = new ClusterStore();
    expect(() => store.apply('Service', { metadata: { name: 'web' } })).toThrow(ObjectKeyError);
    expect(() => store.apply('Node', { metadata: {} })).toThrow(/without metadata.name/);
  });

  it('keeps its own frozen copy', () => {
    const store = new ClusterStore();
    const svc = service('web');
    store.apply('Service', svc);
    svc.spec!.ports![0]!.port = 9999; // the source reuses its object
    const stored = store.service('default', 'web')!;
    expect(stored.spec?.ports?.[0]?.port).toBe(80);
    expect(() => {
      stored.spec!.ports![0]!.port = 1;
    }).toThrow(TypeError);
    // ... and the edited object is a change, not a no-op.
    expect(store.apply('Service', svc)).toBe(true);
  });

  it('stops notifying a listener that unsubscribed', async () => {
    const store = new ClusterStore();
    let calls = 0;
    const unsubscribe = store.subscribe(() => calls++);
    store.apply('Node', node('node-a', '192.0.2.11'));
    await settle();
    unsubscribe();
    store.apply('Node', node('node-b', '192.0.2.12'));
    await settle();
    expect(calls).toBe(1);
  });
});
