// The Kubernetes source against the API server double over real HTTP: the
// initial list, watch events, stripping, relists after 410 Gone and errors
// (with back-off, never a busy loop), resumed watches, an unreachable server,
// a missing CRD, namespace labels, metrics, and a stop that leaves nothing open.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { KubernetesSource, type KubernetesSourceOptions } from '../control/k8s/source.js';
import { LAST_APPLIED_ANNOTATION } from '../control/k8s/strip.js';
import type { ResourceKind } from '../control/resources/kinds.js';
import { ClusterStore, type StoreChanges } from '../control/store/cluster-store.js';
import { ApiServer, type KubeObject } from '../control/apiserver-double/index.js';

const CRD = parse(
  readFileSync(join(import.meta.dirname, '..', 'charts', 'xlb', 'crds', 'ippool.yaml'), 'utf8'),
) as KubeObject;

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function service(name: string, namespace = 'default', extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: { app: name }, ...extra },
    spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ name: 'http', port: 80 }] },
  };
}

function slice(name: string, serviceName: string, address: string) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [address], nodeName: 'node-a', conditions: { ready: true } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

function node(name: string, address: string) {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    status: { addresses: [{ type: 'InternalIP', address }] },
  };
}

function pool(name: string, cidr: string) {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'IPPool',
    metadata: { name },
    spec: { addresses: [cidr] },
  };
}

const names = (objects: readonly { metadata?: { name?: string } }[]) =>
  objects.map((o) => o.metadata?.name);

/** The server's objects of a kind as the source should store them. */
function expected(server: ApiServer, kind: ResourceKind): unknown[] {
  return server.objects(kind).map((o) => {
    const c = structuredClone(o) as KubeObject & { metadata: Record<string, unknown> };
    delete c.metadata.managedFields;
    const annotations = c.metadata.annotations;
    if (annotations !== undefined) {
      delete annotations[LAST_APPLIED_ANNOTATION];
      if (Object.keys(annotations).length === 0) delete c.metadata.annotations;
    }
    return c;
  });
}

/** A logger whose lines the test reads. */
function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream).child({ component: 'k8s-source' }), lines };
}

describe('KubernetesSource', () => {
  let server: ApiServer;
  let store: ClusterStore;
  let source: KubernetesSource | undefined;
  let logs: ReturnType<typeof capture>;
  let changes: StoreChanges[];

  function start(extra: Partial<KubernetesSourceOptions> = {}): KubernetesSource {
    source = new KubernetesSource({
      kubeConfig: server.kubeConfig(),
      store,
      backoff: { initialMs: 20, maxMs: 200, jitter: 0 },
      healthyAfterMs: 150,
      requestTimeoutMs: 2000,
      log: logs.log,
      ...extra,
    });
    source.start();
    return source;
  }

  beforeEach(async () => {
    server = await ApiServer.start({ kubernetesService: false });
    store = new ClusterStore();
    logs = capture();
    changes = [];
    store.subscribe((c) => changes.push(c));
  });

  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await server.close();
  });

  it('lists every kind into the store, then follows adds, updates and deletes', async () => {
    server.apply(CRD);
    server.apply(service('web'));
    server.apply(service('db', 'kube-system'));
    server.apply(slice('web-1', 'web', '10.1.0.1'));
    server.apply(node('node-a', '192.0.2.1'));
    server.apply(pool('default', '203.0.113.0/28'));

    const s = start();
    await s.whenSynced();
    expect(s.isSynced()).toBe(true);
    expect(store.services().map((o) => `${o.metadata?.namespace}/${o.metadata?.name}`)).toEqual([
      'default/web',
      'kube-system/db',
    ]);
    expect(store.list('Service')).toEqual(expected(server, 'Service'));
    expect(store.list('EndpointSlice')).toEqual(expected(server, 'EndpointSlice'));
    expect(store.endpointSlicesFor('default', 'web').map((o) => o.metadata?.name)).toEqual([
      'web-1',
    ]);
    expect(store.list('Node')).toEqual(expected(server, 'Node'));
    expect(store.list('IPPool')).toEqual(expected(server, 'IPPool'));
    // List items come without apiVersion and kind on a real server; the source sets them.
    expect(store.pool('default')).toMatchObject({ apiVersion: 'xlb.dev/v1alpha1', kind: 'IPPool' });
    expect(store.node('node-a')).toMatchObject({ apiVersion: 'v1', kind: 'Node' });
    const status = s.status();
    expect(Object.keys(status.kinds).sort()).toEqual([
      'EndpointSlice',
      'IPPool',
      'Namespace',
      'Node',
      'Service',
    ]);
    await until('every watch', () => Object.values(s.status().kinds).every((k) => k.connected));
    expect(server.openWatches).toBe(5);

    // Add, update, delete, each kind.
    server.apply(service('api'));
    server.apply({
      ...service('web'),
      spec: { ...service('web').spec, externalTrafficPolicy: 'Local' },
    });
    server.remove('Service', 'db', 'kube-system');
    server.apply(slice('web-2', 'web', '10.1.0.2'));
    server.remove('EndpointSlice', 'web-1');
    server.apply(node('node-b', '192.0.2.2'));
    server.apply({
      ...pool('default', '203.0.113.0/28'),
      spec: { addresses: ['203.0.113.16/28'] },
    });
    await until('the changes', () => names(store.services()).join() === 'api,web');
    await until('the slice changes', () => names(store.list('EndpointSlice')).join() === 'web-2');
    await until('the node', () => store.nodes().length === 2);
    await until(
      'the pool update',
      () => store.pool('default')?.spec.addresses[0] === '203.0.113.16/28',
    );
    expect(store.service('default', 'web')?.spec?.externalTrafficPolicy).toBe('Local');
    for (const kind of ['Service', 'EndpointSlice', 'Node', 'IPPool'] as const)
      expect(store.list(kind)).toEqual(expected(server, kind));
    // One initial list per kind, no relist.
    expect(server.requests({ verb: 'list' })).toHaveLength(5);
    expect(s.status().kinds.Service).toMatchObject({ relists: 0, errors: 0, synced: true });
  });

  it('stores objects without managedFields and the last-applied annotation', async () => {
    const managed = [
      {
        manager: 'kubectl-client-side-apply',
        operation: 'Update',
        apiVersion: 'v1',
        time: '2026-01-01T00:00:00Z',
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:spec': { 'f:ports': {} } },
      },
    ];
    // The double keeps managedFields a client writes with a change (not on create).
    const twice = (obj: ReturnType<typeof service>) => {
      server.apply(service(obj.metadata.name, obj.metadata.namespace));
      server.apply(obj);
    };
    twice(
      service('web', 'default', {
        managedFields: managed,
        annotations: { [LAST_APPLIED_ANNOTATION]: '{"big":"copy"}', team: 'a' },
      }),
    );
    twice(
      service('plain', 'default', {
        managedFields: managed,
        annotations: { [LAST_APPLIED_ANNOTATION]: '{}' },
      }),
    );
    // The precondition: the server keeps and serves both.
    expect(server.get('Service', 'web')?.metadata.managedFields).toHaveLength(1);
    expect(server.get('Service', 'web')?.metadata.annotations).toHaveProperty(
      LAST_APPLIED_ANNOTATION,
    );

    const s = start({ kinds: ['Service'] });
    await s.whenSynced();
    const web = store.service('default', 'web')!;
    expect(web.metadata).not.toHaveProperty('managedFields');
    expect(web.metadata?.annotations).toEqual({ team: 'a' });
    expect(store.service('default', 'plain')?.metadata).not.toHaveProperty('annotations');
    expect(web.metadata?.labels).toEqual({ app: 'web' });

    // The same from watch events.
    await until('the watch', () => s.status().kinds.Service!.connected);
    twice(
      service('late', 'default', {
        managedFields: managed,
        annotations: { [LAST_APPLIED_ANNOTATION]: '{}', keep: 'me' },
      }),
    );
    await until(
      'the update',
      () => store.service('default', 'late')?.metadata?.annotations?.keep === 'me',
    );
    expect(server.get('Service', 'late')?.metadata.managedFields).toHaveLength(1);
    expect(store.service('default', 'late')?.metadata).not.toHaveProperty('managedFields');
    expect(store.service('default', 'late')?.metadata?.annotations).toEqual({ keep: 'me' });
    expect(store.list('Service')).toEqual(expected(server, 'Service'));
  });

  it('relists after 410 Gone, applying a delete the broken watch missed, and notifies only changes', async () => {
    for (const n of ['a', 'b', 'c', 'd']) server.apply(service(n));
    const s = start({ kinds: ['Service'] });
    await s.whenSynced();
    await until('the watch', () => server.openWatches === 1);
    await sleep(20);
    changes.length = 0;
    server.clearRequests();

    // The watch breaks; while it is down a Service goes, another changes, and
    // the history the client would resume from is compacted away.
    server.closeWatches();
    server.remove('Service', 'b');
    server.apply({
      ...service('c'),
      metadata: { ...service('c').metadata, labels: { app: 'c2' } },
    });
    server.compact();

    await until('the relist', () => s.status().kinds.Service!.relists === 1);
    await until('the store to match', () => names(store.services()).join() === 'a,c,d');
    expect(store.list('Service')).toEqual(expected(server, 'Service'));
    expect(store.service('default', 'c')?.metadata?.labels).toEqual({ app: 'c2' });
    // The resumed watch met 410, then one list, then a watch from the list's version.
    await until('the watch', () => s.status().kinds.Service!.connected);
    const requests = server.requests({ resource: 'services' });
    expect(requests.map((r) => r.verb)).toEqual(['watch', 'list', 'watch']);
    expect(new URL(requests[2]!.url, server.url).searchParams.get('resourceVersion')).toBe(
      s.status().kinds.Service!.resourceVersion,
    );
    // Only b (deleted) and c (changed) were notified: a and d did not change.
    await sleep(10);
    const notified = changes.flatMap((c) => [...c.Service]).sort();
    expect(notified).toEqual(['default/b', 'default/c']);
    expect(logs.lines.some((l) => String(l.msg).includes('410 Gone'))).toBe(true);
    expect(logs.lines.some((l) => l.msg === 'Service: relisted')).toBe(true);

    // And it keeps following.
    server.apply(service('e'));
    await until('a new Service', () => store.service('default', 'e') !== undefined);
  });

  it('resumes a closed watch from its last resourceVersion without relisting', async () => {
    server.apply(service('a'));
    const s = start({ kinds: ['Service'] });
    await s.whenSynced();
    await until('the watch', () => server.openWatches === 1);
    server.apply(service('b'));
    await until('b', () => store.service('default', 'b') !== undefined);
    const seen = s.status().kinds.Service!.resourceVersion;
    server.clearRequests();

    server.closeWatches();
    server.apply(service('c')); // while no watch is open: replayed from history
    await until('c', () => store.service('default', 'c') !== undefined);
    await until('the watch', () => server.openWatches === 1);
    server.apply(service('d'));
    await until('d', () => store.service('default', 'd') !== undefined);

    const requests = server.requests({ resource: 'services' });
    expect(requests.map((r) => r.verb)).toEqual(['watch']);
    expect(new URL(requests[0]!.url, server.url).searchParams.get('resourceVersion')).toBe(seen);
    expect(s.status().kinds.Service).toMatchObject({ relists: 0, errors: 0, connected: true });
  });

  it('keeps the store while the API server is unreachable and catches up after it returns', async () => {
    for (const n of ['a', 'b', 'c']) server.apply(service(n));
    server.apply(node('node-a', '192.0.2.1'));
    const registry = new Registry();
    const s = start({ kinds: ['Service', 'Node'], registry });
    await s.whenSynced();
    await until('the watches', () => server.openWatches === 2);
    const before = store.list('Service');
    changes.length = 0;

    await server.disconnect();
    // The state moves on while the agent cannot see it.
    server.remove('Service', 'a');
    server.apply(service('z'));
    server.apply(node('node-b', '192.0.2.2'));
    await until('the error to show', () => s.status().kinds.Service!.lastError !== undefined);
    await sleep(500);
    expect(store.list('Service')).toBe(before); // the very same list: nothing changed
    expect(changes).toEqual([]);
    const down = s.status().kinds.Service!;
    expect(down.connected).toBe(false);
    expect(down.lastError).toMatch(/cannot reach the API server at http:\/\/127\.0\.0\.1:\d+/);
    // Back-off: 20, 40, 80, 160, 200, 200 ms... not a busy loop.
    expect(down.errors).toBeGreaterThanOrEqual(3);
    expect(down.errors).toBeLessThanOrEqual(9);
    const metrics = await registry.getSingleMetricAsString('xlb_k8s_watch_connected');
    expect(metrics).toContain('xlb_k8s_watch_connected{kind="Service"} 0');

    await server.reconnect();
    await until('the store to catch up', () => names(store.services()).join() === 'b,c,z');
    await until('the nodes', () => store.nodes().length === 2);
    expect(store.list('Service')).toEqual(expected(server, 'Service'));
    await until('the watches', () => Object.values(s.status().kinds).every((k) => k.connected));
    const relists = await registry.getSingleMetricAsString('xlb_k8s_relists_total');
    expect(relists).toContain('xlb_k8s_relists_total{kind="Service"} 1');
    const errors = await registry.getSingleMetric('xlb_k8s_watch_errors_total')!.get();
    const serviceErrors = errors.values.find((v) => v.labels.kind === 'Service')?.value;
    expect(serviceErrors).toBe(s.status().kinds.Service!.errors);
    expect(await registry.getSingleMetricAsString('xlb_k8s_watch_connected')).toContain(
      'xlb_k8s_watch_connected{kind="Service"} 1',
    );
  });

  it('backs off on failing lists, then resets once a watch is healthy', async () => {
    server.apply(service('a'));
    server.failNext({ verb: 'list', resource: 'services', count: 1000, code: 500 });
    const s = start({ kinds: ['Service'] });
    await sleep(700);
    const failed = server.requests({ verb: 'list', resource: 'services' });
    // 0, 20, 60, 140, 300, 500, 700 ms: about 7 attempts, never hundreds.
    expect(failed.length).toBeGreaterThanOrEqual(4);
    expect(failed.length).toBeLessThanOrEqual(9);
    expect(failed.every((r) => r.code === 500)).toBe(true);
    expect(s.isSynced()).toBe(false);
    expect(s.status().kinds.Service!.lastError).toContain('500 InternalError: injected fault');
    // One warning per failed attempt (the last may still be on its way).
    const warnings = logs.lines.filter((l) => l.level === 40).length;
    expect(warnings).toBeGreaterThanOrEqual(failed.length - 1);
    expect(warnings).toBeLessThanOrEqual(failed.length);

    server.clearFaults();
    await s.whenSynced();
    expect(names(store.services())).toEqual(['a']);
    // A healthy watch resets the back-off: the next break is followed within
    // the initial delay, not the 200 ms ceiling.
    await until('the watch', () => server.openWatches === 1);
    server.apply(service('b')); // an event: the watch is healthy
    await until('b', () => store.service('default', 'b') !== undefined);
    server.clearRequests();
    const t0 = Date.now();
    server.closeWatches();
    await until('the resumed watch', () => server.requests({ verb: 'watch' }).length === 1);
    expect(Date.now() - t0).toBeLessThan(150);
  });

  it('reports a missing IPPool CRD, keeps the other kinds working, and reads pools once it is installed', async () => {
    server.apply(service('web'));
    const s = start();
    await until('the Services', () => store.services().length === 1);
    await until('the IPPool error', () => s.status().kinds.IPPool!.lastError !== undefined);
    expect(s.status().kinds.IPPool!.lastError).toContain('404');
    expect(s.status().kinds.IPPool!.lastError).toContain('charts/xlb/crds/ippool.yaml');
    const warning = logs.lines.find((l) => l.kind === 'IPPool' && l.level === 40);
    expect(String(warning?.msg)).toBe(
      'IPPool: list failed, retrying; the objects read before stay in effect',
    );
    expect(String(warning?.err)).toContain(
      'IPPool CustomResourceDefinition (ippools.xlb.dev) is not installed',
    );
    expect(s.isSynced()).toBe(false);
    expect(s.status().synced).toBe(false);

    // The other kinds follow changes meanwhile.
    server.apply(service('api'));
    await until('the new Service', () => store.services().length === 2);

    server.apply(CRD);
    server.apply(pool('default', '203.0.113.0/28'));
    await s.whenSynced();
    expect(names(store.pools())).toEqual(['default']);
    await until('the pool watch', () => s.status().kinds.IPPool!.connected);
    server.apply(pool('second', '198.51.100.0/28'));
    await until('the second pool', () => store.pools().length === 2);
    expect(store.list('IPPool')).toEqual(expected(server, 'IPPool'));
  });

  it('keeps namespace labels outside the store and follows them', async () => {
    server.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'team-a', labels: { tier: 'gold' } },
    });
    const s = start({ kinds: ['Namespace', 'Service'] });
    let notified = 0;
    s.onNamespaceLabels(() => notified++);
    await s.whenSynced();
    const first = s.namespaceLabels();
    expect(first['team-a']).toEqual({ tier: 'gold', 'kubernetes.io/metadata.name': 'team-a' });
    expect(Object.keys(first).sort()).toEqual([
      'default',
      'kube-node-lease',
      'kube-public',
      'kube-system',
      'team-a',
    ]);
    expect(Object.isFrozen(first)).toBe(true);
    expect(s.namespaceLabels()).toBe(first); // unchanged: the same object
    await until('the watch', () => s.status().kinds.Namespace!.connected);
    expect(notified).toBe(1);

    server.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'team-a', labels: { tier: 'silver' } },
    });
    server.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-b' } });
    await until('the label change', () => s.namespaceLabels()['team-a']?.tier === 'silver');
    await until('team-b', () => s.namespaceLabels()['team-b'] !== undefined);
    expect(notified).toBeGreaterThanOrEqual(2);
    server.remove('Namespace', 'team-b');
    await until('team-b gone', () => s.namespaceLabels()['team-b'] === undefined);
    // Namespaces are no store kind.
    expect(
      changes.every((c) => Object.values(c).every((keys) => ![...keys].includes('team-a'))),
    ).toBe(true);
  });

  it('reads large lists page by page', async () => {
    for (let i = 0; i < 7; i++) server.apply(service(`svc-${i}`));
    const s = start({ kinds: ['Service'], pageSize: 3 });
    await s.whenSynced();
    expect(store.services()).toHaveLength(7);
    const lists = server.requests({ verb: 'list', resource: 'services' });
    expect(lists).toHaveLength(3);
    expect(lists.map((r) => new URL(r.url, server.url).searchParams.get('limit'))).toEqual([
      '3',
      '3',
      '3',
    ]);
    expect(new URL(lists[1]!.url, server.url).searchParams.get('continue')).toBeTruthy();
  });

  it('stops: no watch open, no request after, the store keeps its content', async () => {
    server.apply(CRD);
    server.apply(service('a'));
    // Timers and sockets: what could keep the agent's process alive.
    const handles = () => {
      const all = process.getActiveResourcesInfo();
      return {
        timers: all.filter((r) => r === 'Timeout').length,
        sockets: all.filter((r) => r === 'TCPSocketWrap').length,
      };
    };
    const baseline = handles();
    const s = start();
    await s.whenSynced();
    await until('every watch', () => server.openWatches === 5);
    await s.stop();
    // The server sees each connection close a moment after the client closed it.
    await until('the server to see the watches end', () => server.openWatches === 0, 500);
    expect(Object.values(s.status().kinds).every((k) => !k.connected)).toBe(true);
    const count = server.requests().length;
    server.apply(service('b'));
    server.closeWatches();
    await sleep(300);
    expect(server.requests().length).toBe(count);
    expect(names(store.services())).toEqual(['a']);
    expect(handles().timers).toBeLessThanOrEqual(baseline.timers);
    expect(handles().sockets).toBeLessThanOrEqual(baseline.sockets);
    await s.stop(); // twice is fine
  });

  it('stops while the API server is unreachable, and before the first list', async () => {
    await server.disconnect();
    const s = start();
    const synced = s.whenSynced();
    await until('an error', () => s.status().kinds.Service!.errors > 0);
    await s.stop();
    await expect(synced).rejects.toThrow(/stopped before every kind was listed/);
    await server.reconnect();
    await sleep(100);
    expect(server.requests()).toEqual([]);
    expect(server.openWatches).toBe(0);
  });

  it('refuses unknown kinds and a second start', () => {
    expect(
      () =>
        new KubernetesSource({
          kubeConfig: server.kubeConfig(),
          store,
          kinds: ['Pod' as never],
        }),
    ).toThrow(/unknown kind 'Pod'/);
    const s = start({ kinds: ['Node'] });
    expect(() => s.start()).toThrow(/starts once/);
  });
});
