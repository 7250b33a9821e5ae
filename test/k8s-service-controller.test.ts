// The leader's Service controller against the API server double over real
// HTTP (client-node), read back with client-node and the real kubectl:
// addresses, finalizer, conditions and events on Services; cleanup on delete
// and on leaving xlb; pool edits and overlaps; leader changes, conflicts,
// outages and stop().
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import {
  ADD,
  CoreV1Api,
  CustomObjectsApi,
  DELETE,
  ERROR,
  ListWatch,
  PatchStrategy,
  setHeaderOptions,
  UPDATE,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type V1Service,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { LB_FINALIZER, ADDRESS_CONDITION } from '../control/k8s/service-status.js';
import {
  ServiceController,
  type CleanupPort,
  type ServiceControllerOptions,
} from '../control/k8s/service-controller.js';
import type { Logger } from '../control/observe/log.js';
import type { IPPool } from '../control/resources/ip-pool.js';
import { ClusterStore } from '../control/store/cluster-store.js';
import { ApiServer, type KubeObject } from '../control/apiserver-double/index.js';
import { haveKubectl, kubectl, kubectlPath } from './support/kubectl.js';

const XLB = 'xlb.dev/xlb';
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const crd = parse(
  readFileSync(join(import.meta.dirname, '..', 'charts', 'xlb', 'crds', 'ippool.yaml'), 'utf8'),
) as KubeObject;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns something other than undefined/false. */
async function eventually<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(15);
  }
}

/** Services and IPPools from the API server into a ClusterStore: a tiny list+watch. */
class StoreFeed {
  readonly store = new ClusterStore();
  private readonly informers: ListWatch<never>[] = [];
  private stopped = false;

  constructor(kc: KubeConfig) {
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const services = new ListWatch<V1Service>(
      '/api/v1/services',
      new Watch(kc),
      () => core.listServiceForAllNamespaces(),
      false,
    );
    services.on(ADD, (s) => this.store.apply('Service', s));
    services.on(UPDATE, (s) => this.store.apply('Service', s));
    services.on(DELETE, (s) =>
      this.store.delete('Service', `${s.metadata?.namespace}/${s.metadata?.name}`),
    );
    const pools = new ListWatch<IPPool>(
      '/apis/xlb.dev/v1alpha1/ippools',
      new Watch(kc),
      () =>
        custom.listClusterCustomObject({
          group: 'xlb.dev',
          version: 'v1alpha1',
          plural: 'ippools',
        }) as Promise<KubernetesListObject<IPPool>>,
      false,
    );
    pools.on(ADD, (p) => this.store.apply('IPPool', p));
    pools.on(UPDATE, (p) => this.store.apply('IPPool', p));
    pools.on(DELETE, (p) => this.store.delete('IPPool', p.metadata.name));
    for (const i of [services, pools] as ListWatch<never>[]) {
      // client-node leaves restarting after an error to the caller.
      i.on(ERROR, () => {
        if (!this.stopped) setTimeout(() => void (this.stopped || i.start()), 50);
      });
      this.informers.push(i);
    }
  }

  async start(): Promise<void> {
    for (const i of this.informers) await i.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const i of this.informers) await i.stop();
  }
}

/** The cleanup an agent does, seen from the store: its status no longer lists the addresses. */
function storeCleanup(store: ClusterStore): CleanupPort & { calls: [string, string[]][] } {
  const calls: [string, string[]][] = [];
  return {
    calls,
    whenCleared(key, addresses, signal) {
      calls.push([key, addresses]);
      const cleared = (): boolean => {
        const [ns, name] = key.split('/') as [string, string];
        const ips = (store.service(ns, name)?.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
        return !addresses.some((a) => ips.includes(a));
      };
      return new Promise<void>((resolve, reject) => {
        const done = (): void => {
          unsubscribe();
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          unsubscribe();
          reject(signal.reason as Error);
        };
        const unsubscribe = store.subscribe(() => {
          if (cleared()) done();
        });
        signal.addEventListener('abort', onAbort, { once: true });
        if (cleared()) done();
      });
    },
  };
}

/** storeCleanup, but also held back until the test opens the gate. */
function gatedCleanup(store: ClusterStore): CleanupPort & {
  calls: [string, string[]][];
  open(): void;
} {
  const inner = storeCleanup(store);
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  return {
    calls: inner.calls,
    open,
    async whenCleared(key, addresses, signal) {
      await inner.whenCleared(key, addresses, signal);
      await Promise.race([
        gate,
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
        ),
      ]);
    },
  };
}

/** A logger whose lines the test can read (XLB_TEST_LOG=1 also prints them, for debugging). */
function captureLog(): { log: Logger; lines: () => { level: string; msg: string }[] } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(...chunk.toString().split('\n').filter(Boolean));
      if (process.env.XLB_TEST_LOG) process.stderr.write(chunk);
      cb();
    },
  });
  const log = pino(
    { level: 'debug', formatters: { level: (label) => ({ level: label }) } },
    stream,
  ) as Logger;
  return { log, lines: () => out.map((l) => JSON.parse(l) as { level: string; msg: string }) };
}

describe('Service controller', () => {
  let server: ApiServer;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let feed: StoreFeed;
  let controllers: ServiceController[];

  beforeAll(() => {
    expect(haveKubectl(), `${kubectlPath} is missing: run scripts/setup.sh`).toBe(true);
  });

  beforeEach(async () => {
    server = await ApiServer.start();
    server.apply(crd);
    kc = server.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    feed = new StoreFeed(kc);
    await feed.start();
    controllers = [];
  });

  afterEach(async () => {
    for (const c of controllers) await c.stop();
    await feed.stop();
    await server.close();
  });

  function controller(o: Partial<ServiceControllerOptions> = {}): ServiceController {
    const c = new ServiceController({
      store: feed.store,
      namespaceLabels: () => ({}),
      kubeConfig: kc,
      cleanup: storeCleanup(feed.store),
      log: captureLog().log,
      identity: 'test-agent',
      timing: {
        requestTimeoutMs: 2000,
        conflictBackoffMs: 5,
        retryInitialMs: 20,
        retryMaxMs: 200,
        eventSeriesWindowMs: 60_000,
      },
      ...o,
    });
    controllers.push(c);
    return c;
  }

  async function createPool(name: string, addresses: string[]): Promise<void> {
    await custom.createClusterCustomObject({
      group: 'xlb.dev',
      version: 'v1alpha1',
      plural: 'ippools',
      body: {
        apiVersion: 'xlb.dev/v1alpha1',
        kind: 'IPPool',
        metadata: { name },
        spec: { addresses },
      },
    });
    await eventually(`pool ${name} in the store`, () => feed.store.pool(name));
  }

  async function createService(
    name: string,
    spec: Partial<NonNullable<V1Service['spec']>> = {},
    annotations?: Record<string, string>,
  ): Promise<void> {
    await core.createNamespacedService({
      namespace: 'default',
      body: {
        metadata: { name, ...(annotations !== undefined ? { annotations } : {}) },
        spec: {
          type: 'LoadBalancer',
          loadBalancerClass: XLB,
          selector: { app: name },
          ports: [{ name: 'http', port: 80 }],
          ...spec,
        },
      },
    });
  }

  const svc = (name: string) => server.get('Service', name);
  const ips = (name: string) =>
    ((svc(name)?.status as V1Service['status'])?.loadBalancer?.ingress ?? []).map((i) => i.ip);
  const ingress = (name: string) =>
    (svc(name)?.status as V1Service['status'])?.loadBalancer?.ingress;
  const condition = (name: string) =>
    ((svc(name)?.status as V1Service['status'])?.conditions ?? []).find(
      (c) => c.type === ADDRESS_CONDITION,
    ) as unknown as Record<string, unknown> | undefined;
  const finalizers = (name: string) => svc(name)?.metadata.finalizers ?? [];
  const eventsOf = (name: string) =>
    server
      .objects('Event', 'default')
      .filter((e) => (e.involvedObject as { name?: string } | undefined)?.name === name)
      .map((e) => e as unknown as Record<string, unknown>);
  const storeIps = (name: string) =>
    (feed.store.service('default', name)?.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);

  it('gives a Service an address, the finalizer first, a condition and an event that kubectl describe shows', async () => {
    await createPool('default', ['192.0.2.10-192.0.2.20']);
    controller().start();
    await createService('web');
    await eventually('an address', () => ips('web')[0] === '192.0.2.10');

    expect(ingress('web')).toEqual([{ ip: '192.0.2.10', ipMode: 'VIP' }]);
    expect(finalizers('web')).toEqual([LB_FINALIZER]);
    expect(condition('web')).toMatchObject({
      status: 'True',
      reason: 'Assigned',
      message: "192.0.2.10 from IPPool 'default'",
    });
    expect(String(condition('web')?.lastTransitionTime)).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
    // The finalizer went on before any address was written.
    const writes = server
      .requests({ verb: 'patch', resource: 'services', name: 'web' })
      .map((r) => r.subresource ?? 'main');
    expect(writes).toEqual(['main', 'status']);

    const event = await eventually('the IPAllocated event', () =>
      eventsOf('web').find((e) => e.reason === 'IPAllocated'),
    );
    expect(event).toMatchObject({
      type: 'Normal',
      message: "Assigned IP 192.0.2.10 from IPPool 'default'",
      reportingComponent: 'xlb.dev/controller',
      reportingInstance: 'test-agent',
      action: 'Allocate',
    });
    expect((event.involvedObject as { uid?: string }).uid).toBe(svc('web')?.metadata.uid);

    const described = await kubectl(server.url, ['describe', 'svc', 'web']);
    expect(described.stderr).toBe('');
    expect(described.stdout).toMatch(/LoadBalancer Ingress:\s+192\.0\.2\.10/);
    expect(described.stdout).toMatch(
      /Normal\s+IPAllocated\s+.*xlb\.dev\/controller\s+Assigned IP 192\.0\.2\.10 from IPPool 'default'/,
    );
  });

  it('never moves an assigned address across a leader change', async () => {
    await createPool('default', ['192.0.2.10-192.0.2.20']);
    const first = controller();
    first.start();
    for (const name of ['a', 'b', 'c']) {
      await createService(name);
      await eventually(`${name}'s address in the store`, () => storeIps(name).length === 1);
    }
    expect(['a', 'b', 'c'].map((n) => ips(n)[0])).toEqual([
      '192.0.2.10',
      '192.0.2.11',
      '192.0.2.12',
    ]);
    // Freeing the lowest address: a fresh allocation that ignored status would move b and c down.
    await core.deleteNamespacedService({ name: 'a', namespace: 'default' });
    await eventually('a gone', () => svc('a') === undefined && !feed.store.service('default', 'a'));
    await first.stop();

    server.clearRequests();
    const second = controller();
    second.start();
    await createService('d');
    await eventually("d's address", () => ips('d').length === 1);
    expect(ips('d')).toEqual(['192.0.2.10']);
    expect(ips('b')).toEqual(['192.0.2.11']);
    expect(ips('c')).toEqual(['192.0.2.12']);
    // The new leader wrote nothing to the Services that already had theirs.
    const touched = server
      .requests({ verb: 'patch', resource: 'services' })
      .map((r) => r.name)
      .filter((n) => n !== 'd');
    expect(touched).toEqual([]);
    expect(eventsOf('b').filter((e) => e.reason === 'IPAllocated')).toHaveLength(1);
  });

  it('never overwrites what an earlier leader wrote, even from a store that lags behind', async () => {
    await createPool('default', ['192.0.2.10-192.0.2.20']);
    await createService('x');
    await createService('y');
    const before = server.get('Service', 'y') as V1Service;
    const first = controller();
    first.start();
    await eventually('both served', () => ips('x').length === 1 && ips('y').length === 1);
    expect(ips('y')).toEqual(['192.0.2.11']);
    await first.stop();

    // The new leader's view still shows y as it was created, and no x: from
    // that alone it would give y 192.0.2.10.
    const lagging = new ClusterStore();
    lagging.apply('IPPool', feed.store.pool('default')!);
    lagging.apply('Service', before);
    server.clearRequests();
    const { log, lines } = captureLog();
    controller({ store: lagging, log }).start();
    await eventually('the conflict and the fresh read', () => {
      const seq = server
        .requests({ resource: 'services', name: 'y' })
        .map((r) => `${r.verb}${r.subresource !== undefined ? `/${r.subresource}` : ''} ${r.code}`);
      return seq.join(',') === 'patch 409,get 200' ? seq : undefined;
    });
    await eventually('deciding again', () =>
      lines().some((l) => l.msg.startsWith('status changed under us')),
    );
    await sleep(150);
    expect(ips('y')).toEqual(['192.0.2.11']);
    expect(server.requests({ resource: 'services', name: 'y', code: 200 })).toEqual([
      expect.objectContaining({ verb: 'get' }),
    ]);
  });

  it('retries a status write refused with 409 Conflict, and counts it', async () => {
    await createPool('default', ['192.0.2.10-192.0.2.20']);
    const registry = new Registry();
    controller({ registry }).start();
    server.failNext({
      verb: 'patch',
      resource: 'services',
      subresource: 'status',
      code: 409,
      reason: 'Conflict',
    });
    await createService('web');
    await eventually('an address', () => ips('web')[0] === '192.0.2.10');
    const statusWrites = server.requests({
      resource: 'services',
      name: 'web',
      subresource: 'status',
    });
    expect(statusWrites.map((r) => `${r.verb} ${r.code}`)).toEqual(['patch 409', 'patch 200']);
    // Between them the Service was read again, to recompute from what is there now.
    const sequence = server
      .requests({ resource: 'services', name: 'web' })
      .map((r) => `${r.verb}${r.subresource !== undefined ? `/${r.subresource}` : ''} ${r.code}`);
    expect(sequence).toEqual(['patch 200', 'patch/status 409', 'get 200', 'patch/status 200']);
    const metric = await registry.getSingleMetric('xlb_k8s_write_errors_total')!.get();
    expect(metric.values).toContainEqual({
      labels: { resource: 'service', reason: 'Conflict' },
      value: 1,
    });
  });

  it('retries other failed writes with backoff, logging the first and counting each', async () => {
    await createPool('default', ['192.0.2.10-192.0.2.20']);
    const registry = new Registry();
    const { log, lines } = captureLog();
    controller({ registry, log }).start();
    server.failNext({ verb: 'patch', resource: 'services', subresource: 'status', count: 3 });
    await createService('web');
    await eventually('an address', () => ips('web')[0] === '192.0.2.10', 10_000);
    const codes = server
      .requests({ resource: 'services', name: 'web', subresource: 'status' })
      .map((r) => r.code);
    expect(codes).toEqual([500, 500, 500, 200]);
    const metric = await registry.getSingleMetric('xlb_k8s_write_errors_total')!.get();
    expect(metric.values).toContainEqual({
      labels: { resource: 'service', reason: 'InternalError' },
      value: 3,
    });
    expect(
      lines()
        .filter((l) => l.level === 'warn')
        .map((l) => l.msg),
    ).toEqual(['could not update service; will retry']);
  });

  it('reports an exhausted pool on the Service that cannot be served, once, and leaves the others alone', async () => {
    await createPool('small', ['192.0.2.10-192.0.2.11']);
    const c = controller();
    c.start();
    for (const name of ['s1', 's2', 's3']) {
      await createService(name);
      await eventually(`${name} settled`, () => condition(name));
    }
    expect(ips('s1')).toEqual(['192.0.2.10']);
    expect(ips('s2')).toEqual(['192.0.2.11']);
    expect(ips('s3')).toEqual([]);
    expect(condition('s1')).toMatchObject({ status: 'True', reason: 'Assigned' });
    expect(condition('s3')).toMatchObject({ status: 'False', reason: 'PoolExhausted' });
    expect(String(condition('s3')?.message)).toContain('small');
    expect(finalizers('s3')).toEqual([LB_FINALIZER]);
    const failed = await eventually('the AllocationFailed event', () =>
      eventsOf('s3').find((e) => e.reason === 'AllocationFailed'),
    );
    expect(failed).toMatchObject({ type: 'Warning', message: condition('s3')?.message });

    // A request that cannot be read is reported the same way, and disturbs no one either.
    await createService('bad', undefined, { 'xlb.dev/load-balancer-ips': 'not-an-ip' });
    await eventually('bad settled', () => condition('bad'));
    expect(condition('bad')).toMatchObject({ status: 'False', reason: 'InvalidRequest' });
    expect(String(condition('bad')?.message)).toContain(
      "annotation xlb.dev/load-balancer-ips: 'not-an-ip' is not an IP address",
    );
    await eventually('its event', () =>
      eventsOf('bad').some((e) => e.reason === 'AllocationFailed' && e.type === 'Warning'),
    );
    expect([ips('s1'), ips('s2'), ips('bad')]).toEqual([['192.0.2.10'], ['192.0.2.11'], []]);

    // More passes (another Service changes) repeat nothing.
    await core.patchNamespacedService(
      { name: 's1', namespace: 'default', body: { metadata: { labels: { touched: 'yes' } } } },
      merge,
    );
    await eventually(
      'the label in the store',
      () => feed.store.service('default', 's1')?.metadata?.labels?.['touched'],
    );
    await sleep(100);
    expect(eventsOf('s3').filter((e) => e.reason === 'AllocationFailed')).toHaveLength(1);

    // A leadership flap reports it again: the same event, counted, not a new one.
    await c.stop();
    c.start();
    await eventually('the series count', () => {
      const events = eventsOf('s3').filter((e) => e.reason === 'AllocationFailed');
      return (
        events.length === 1 && (events[0]!.series as { count?: number } | undefined)?.count === 2
      );
    });
    const described = await kubectl(server.url, ['describe', 'svc', 's3']);
    expect(described.stdout).toMatch(/Warning\s+AllocationFailed\s+.*\(x2 over/);
    expect(ips('s1')).toEqual(['192.0.2.10']);
  });

  it('keeps the finalizer of a deleted Service until the cleanup is done, then frees its address', async () => {
    await createPool('one', ['192.0.2.10/32']);
    const cleanup = gatedCleanup(feed.store);
    controller({ cleanup }).start();
    await createService('old');
    await eventually('an address', () => ips('old')[0] === '192.0.2.10');
    await createService('next');
    await eventually('next pending', () => condition('next')?.reason === 'PoolExhausted');

    await core.deleteNamespacedService({ name: 'old', namespace: 'default' });
    await eventually('the address released from status', () => ips('old').length === 0);
    expect(svc('old')?.metadata.deletionTimestamp).toBeDefined();
    expect(condition('old')).toMatchObject({ status: 'False', reason: 'Releasing' });
    await eventually('whenCleared asked', () => cleanup.calls.length === 1);
    expect(cleanup.calls[0]).toEqual(['default/old', ['192.0.2.10']]);
    await sleep(200);
    expect(finalizers('old')).toEqual([LB_FINALIZER]);
    // The address is not handed out while its old holder may still be served somewhere.
    expect(ips('next')).toEqual([]);

    cleanup.open();
    await eventually('old gone', () => svc('old') === undefined);
    await eventually('next served', () => ips('next')[0] === '192.0.2.10');
    expect(condition('next')).toMatchObject({ status: 'True' });
  });

  it('cleans up a Service whose type changes from LoadBalancer', async () => {
    await createPool('default', ['192.0.2.10-192.0.2.20']);
    controller().start();
    await createService('web');
    await eventually('an address', () => ips('web').length === 1);
    await core.patchNamespacedService(
      { name: 'web', namespace: 'default', body: { spec: { type: 'ClusterIP' } } },
      merge,
    );
    await eventually('the finalizer removed', () => finalizers('web').length === 0);
    expect(ingress('web') ?? []).toEqual([]);
    expect(condition('web')).toBeUndefined();
    const released = await eventually('the IPReleased event', () =>
      eventsOf('web').find((e) => e.reason === 'IPReleased'),
    );
    expect(released.message).toBe(
      "Released IP 192.0.2.10: the Service is no longer xlb's: type is ClusterIP, not LoadBalancer",
    );
    // And the address is free again.
    await createService('other');
    await eventually("other's address", () => ips('other')[0] === '192.0.2.10');
  });

  it('cleans up a class-less Service when xlb stops being the default class', async () => {
    await createPool('default', ['192.0.2.10-192.0.2.20']);
    const first = controller({ options: { defaultClass: true } });
    first.start();
    await createService('plain', { loadBalancerClass: undefined });
    await eventually('an address', () => ips('plain').length === 1);
    await first.stop();

    controller({ options: { defaultClass: false } }).start();
    await eventually('the finalizer removed', () => finalizers('plain').length === 0);
    expect(ingress('plain') ?? []).toEqual([]);
    expect(condition('plain')).toBeUndefined();
  });

  it("leaves another implementation's status alone when a Service moved to its class", async () => {
    await createPool('default', ['192.0.2.10-192.0.2.20']);
    const first = controller();
    first.start();
    await createService('moved');
    await eventually('an address', () => ips('moved').length === 1);
    await first.stop();
    // While no xlb leader watches: to ClusterIP and back, under another class,
    // whose controller writes its own address; our condition stays behind.
    await core.patchNamespacedService(
      { name: 'moved', namespace: 'default', body: { spec: { type: 'ClusterIP' } } },
      merge,
    );
    await core.patchNamespacedService(
      {
        name: 'moved',
        namespace: 'default',
        body: { spec: { type: 'LoadBalancer', loadBalancerClass: 'other.example/lb' } },
      },
      merge,
    );
    await core.patchNamespacedServiceStatus(
      {
        name: 'moved',
        namespace: 'default',
        body: { status: { loadBalancer: { ingress: [{ ip: '203.0.113.5', ipMode: 'VIP' }] } } },
      },
      merge,
    );
    expect(condition('moved')).toMatchObject({ status: 'True' });
    await eventually('the store caught up', () => storeIps('moved')[0] === '203.0.113.5');

    controller().start();
    await eventually('the finalizer removed', () => finalizers('moved').length === 0);
    expect(ingress('moved')).toEqual([{ ip: '203.0.113.5', ipMode: 'VIP' }]);
    expect(condition('moved')).toBeUndefined();
  });

  it('keeps the addresses a pool edit still covers, and moves the others with events', async () => {
    await createPool('edit', ['192.0.2.10-192.0.2.20']);
    controller().start();
    await createService('p1');
    await eventually('p1', () => ips('p1').length === 1);
    await createService('p2');
    await eventually('p2', () => ips('p2').length === 1);
    expect([ips('p1'), ips('p2')]).toEqual([['192.0.2.10'], ['192.0.2.11']]);

    await custom.patchClusterCustomObject(
      {
        group: 'xlb.dev',
        version: 'v1alpha1',
        plural: 'ippools',
        name: 'edit',
        body: { spec: { addresses: ['192.0.2.11-192.0.2.20'] } },
      },
      merge,
    );
    await eventually('p1 moved', () => ips('p1')[0] === '192.0.2.12');
    expect(ips('p2')).toEqual(['192.0.2.11']);
    const reasons = await eventually('both events', () => {
      const r = eventsOf('p1').map(
        (e) => `${String(e.type)} ${String(e.reason)}: ${String(e.message)}`,
      );
      return r.length === 3 ? r : undefined;
    });
    expect(reasons).toEqual([
      "Normal IPAllocated: Assigned IP 192.0.2.10 from IPPool 'edit'",
      'Warning IPReleased: Released IP 192.0.2.10: no IPPool holds it any more',
      "Normal IPAllocated: Assigned IP 192.0.2.12 from IPPool 'edit'",
    ]);
    expect(eventsOf('p2').filter((e) => e.reason === 'IPReleased')).toEqual([]);
  });

  it('writes pool status: usage, and Overlap on the later of two overlapping pools', async () => {
    // Created in the same second, the pools are ordered by name: "first" is the earlier.
    await createPool('first', ['192.0.2.0/28']);
    await createPool('second', ['192.0.2.8/29', '198.51.100.0/30']);
    controller().start();
    await createService('web');
    await eventually('an address', () => ips('web')[0] === '192.0.2.0');
    const status = (name: string) =>
      server.get('IPPool', name)?.status as
        { ipv4?: unknown; conditions?: Record<string, unknown>[] } | undefined;
    await eventually(
      'first in use',
      () => (status('first')?.ipv4 as { used?: number })?.used === 1,
    );
    expect(status('first')?.ipv4).toEqual({ total: '16', used: 1, free: '15' });
    expect(status('first')?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Serving',
    });
    const second = status('second')?.conditions ?? [];
    expect(second.find((c) => c.type === 'Overlap')).toMatchObject({
      status: 'True',
      reason: 'OverlapsEarlierPool',
    });
    expect(String(second.find((c) => c.type === 'Overlap')?.message)).toContain('first');
    expect(second.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'Overlap',
    });
    const table = await kubectl(server.url, ['get', 'ippools']);
    expect(table.stdout).toMatch(/^second\s+\S+\s+False\s+Overlap\s/m);
  });

  it('stop() cancels pending retries: nothing is written after it', async () => {
    await createPool('default', ['192.0.2.10-192.0.2.20']);
    const c = controller();
    c.start();
    server.failNext({ verb: 'patch', resource: 'services', subresource: 'status', count: 10_000 });
    await createService('web');
    const failedWrites = () =>
      server.requests({ verb: 'patch', resource: 'services', subresource: 'status' }).length;
    await eventually('retries under way', () => failedWrites() >= 3);
    expect(finalizers('web')).toEqual([LB_FINALIZER]);
    await c.stop();
    const after = server.requests().filter((r) => r.verb !== 'list' && r.verb !== 'watch').length;
    await sleep(400);
    expect(server.requests().filter((r) => r.verb !== 'list' && r.verb !== 'watch')).toHaveLength(
      after,
    );
    expect(ips('web')).toEqual([]);
  });

  it('keeps retrying quietly while the API server is unreachable, and catches up after', async () => {
    await createPool('default', ['192.0.2.10-192.0.2.20']);
    const { log, lines } = captureLog();
    controller({ log }).start();
    await createService('before');
    await eventually('an address', () => ips('before').length === 1);

    await server.disconnect();
    // Created while the controller cannot reach the API server.
    server.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'during', namespace: 'default' },
      spec: { type: 'LoadBalancer', loadBalancerClass: XLB, ports: [{ port: 80 }] },
    });
    feed.store.apply('Service', server.get('Service', 'during') as V1Service);
    await sleep(500);
    await server.reconnect();
    await eventually('an address after the outage', () => ips('during').length === 1);
    // The event of the allocation made during the outage waited for it to end.
    await eventually('its event', () => eventsOf('during').some((e) => e.reason === 'IPAllocated'));
    const said = lines()
      .filter((l) => l.level === 'warn' || l.msg.includes('answers again'))
      .map((l) => l.msg);
    expect(said).toEqual([
      'the API server is unreachable; retrying quietly',
      'the API server answers again',
    ]);
  });
});
