// The Kubernetes API server double (control/apiserver-double) checked with the
// clients that will use it unmodified: @kubernetes/client-node (xlb's own
// client) and the real kubectl 1.35 that scripts/setup.sh extracts.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  ADD,
  ApiException,
  ApiextensionsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DELETE,
  ERROR,
  EventsV1Api,
  ListWatch,
  PatchStrategy,
  UPDATE,
  Watch,
  setHeaderOptions,
  type KubeConfig,
  type V1CustomResourceDefinition,
  type V1Service,
} from '@kubernetes/client-node';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { projectRoot } from '../control/paths.js';
import { ApiServer } from '../control/apiserver-double/index.js';
import { haveKubectl, kubectl, kubectlPath } from './support/kubectl.js';

const CLEANUP = 'service.kubernetes.io/load-balancer-cleanup';
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

function lbService(name: string, extra: Partial<V1Service['spec']> = {}): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels: { app: name } },
    spec: {
      type: 'LoadBalancer',
      selector: { app: name },
      ports: [{ name: 'http', port: 80 }],
      ...extra,
    },
  };
}

/** The Status body and code of a failed client-node call. */
async function failure(
  p: Promise<unknown>,
): Promise<{ code: number; reason: string; body: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof ApiException)) throw e;
    const body = JSON.parse(String(e.body)) as Record<string, unknown>;
    return { code: e.code, reason: String(body.reason), body };
  }
  throw new Error('the call succeeded');
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const widgetCRD: V1CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.example.com' },
  spec: {
    group: 'example.com',
    scope: 'Namespaced',
    names: { kind: 'Widget', plural: 'widgets', singular: 'widget', shortNames: ['wd'] },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                required: ['size'],
                properties: {
                  size: { type: 'integer', minimum: 1 },
                  color: { type: 'string', _default: 'blue', _enum: ['blue', 'red'] },
                },
              },
              status: { type: 'object', properties: { ready: { type: 'boolean' } } },
            },
          },
        },
      },
    ],
  },
};

describe('API server double, with @kubernetes/client-node', () => {
  let server: ApiServer;
  let kc: KubeConfig;
  let core: CoreV1Api;

  beforeEach(async () => {
    server = await ApiServer.start();
    kc = server.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
  });

  afterEach(async () => {
    await server.close();
  });

  it('creates, lists and patches Services, filling in what a cluster fills in', async () => {
    const created = await core.createNamespacedService({
      namespace: 'default',
      body: lbService('web'),
    });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(created.spec).toMatchObject({
      type: 'LoadBalancer',
      sessionAffinity: 'None',
      externalTrafficPolicy: 'Cluster',
      internalTrafficPolicy: 'Cluster',
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      allocateLoadBalancerNodePorts: true,
    });
    expect(created.spec?.clusterIP).toMatch(/^10\.(9[6-9]|10[0-9]|11[01])\./);
    expect(created.spec?.ports?.[0]).toMatchObject({ protocol: 'TCP', port: 80, targetPort: 80 });
    expect(created.spec?.ports?.[0]?.nodePort).toBeGreaterThanOrEqual(30000);
    expect(created.status).toEqual({ loadBalancer: {} });

    const dual = await core.createNamespacedService({
      namespace: 'default',
      body: lbService('dual', { ipFamilyPolicy: 'RequireDualStack' }),
    });
    expect(dual.spec?.ipFamilies).toEqual(['IPv4', 'IPv6']);
    expect(dual.spec?.clusterIPs?.[1]).toMatch(/^fd00:10:96::/);

    const again = await failure(
      core.createNamespacedService({ namespace: 'default', body: lbService('web') }),
    );
    expect(again).toMatchObject({ code: 409, reason: 'AlreadyExists' });

    const list = await core.listNamespacedService({
      namespace: 'default',
      labelSelector: 'app in (web,dual)',
    });
    expect(list.items.map((s) => s.metadata?.name)).toEqual(['dual', 'web']);
    expect(Number(list.metadata?.resourceVersion)).toBeGreaterThanOrEqual(
      Number(dual.metadata?.resourceVersion),
    );
    const byName = await core.listServiceForAllNamespaces({ fieldSelector: 'metadata.name=web' });
    expect(byName.items).toHaveLength(1);

    const patched = await core.patchNamespacedService(
      { name: 'web', namespace: 'default', body: { spec: { externalTrafficPolicy: 'Local' } } },
      merge,
    );
    expect(patched.spec?.externalTrafficPolicy).toBe('Local');
    expect(patched.spec?.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    expect(patched.spec?.clusterIP).toBe(created.spec?.clusterIP);
    expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(
      Number(created.metadata?.resourceVersion),
    );

    // client-node's default patch type is JSON patch.
    const jsonPatched = await core.patchNamespacedService({
      name: 'web',
      namespace: 'default',
      body: [{ op: 'replace', path: '/spec/ports/0/port', value: 8080 }],
    });
    expect(jsonPatched.spec?.ports?.[0]).toMatchObject({ port: 8080, targetPort: 80 });

    // A write that changes nothing keeps the resourceVersion, as a real server does.
    const same = await core.patchNamespacedService(
      { name: 'web', namespace: 'default', body: { spec: {} } },
      merge,
    );
    expect(same.metadata?.resourceVersion).toBe(jsonPatched.metadata?.resourceVersion);
  });

  it('writes status with optimistic concurrency: a stale resourceVersion gets 409 Conflict, a retry succeeds', async () => {
    const svc = await core.createNamespacedService({
      namespace: 'default',
      body: lbService('web'),
    });
    const rv = svc.metadata?.resourceVersion;
    const status = (ip: string, resourceVersion?: string): object => ({
      metadata: resourceVersion === undefined ? {} : { resourceVersion },
      status: { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } },
    });

    // Someone else writes in between: the label change makes rv stale.
    await core.patchNamespacedService(
      { name: 'web', namespace: 'default', body: { metadata: { labels: { x: 'y' } } } },
      merge,
    );
    const stale = await failure(
      core.patchNamespacedServiceStatus(
        { name: 'web', namespace: 'default', body: status('192.0.2.10', rv) },
        merge,
      ),
    );
    expect(stale).toMatchObject({ code: 409, reason: 'Conflict' });
    expect(stale.body.message).toContain('the object has been modified');

    const fresh = await core.readNamespacedService({ name: 'web', namespace: 'default' });
    const written = await core.patchNamespacedServiceStatus(
      {
        name: 'web',
        namespace: 'default',
        body: status('192.0.2.10', fresh.metadata?.resourceVersion),
      },
      merge,
    );
    expect(written.status?.loadBalancer?.ingress).toEqual([{ ip: '192.0.2.10', ipMode: 'VIP' }]);

    // PUT /status with a stale object fails the same way; with the fresh one it replaces the list.
    const staleReplace = await failure(
      core.replaceNamespacedServiceStatus({ name: 'web', namespace: 'default', body: fresh }),
    );
    expect(staleReplace.code).toBe(409);
    written.status = { loadBalancer: { ingress: [{ ip: '192.0.2.11', ipMode: 'VIP' }] } };
    const replaced = await core.replaceNamespacedServiceStatus({
      name: 'web',
      namespace: 'default',
      body: written,
    });
    expect(replaced.status?.loadBalancer?.ingress?.map((i) => i.ip)).toEqual(['192.0.2.11']);

    // /status changes status only; the main resource ignores status.
    const both = {
      spec: { sessionAffinity: 'ClientIP' },
      status: { loadBalancer: { ingress: [{ ip: '192.0.2.12' }] } },
    };
    const viaStatus = await core.patchNamespacedServiceStatus(
      { name: 'web', namespace: 'default', body: both },
      merge,
    );
    expect(viaStatus.spec?.sessionAffinity).toBe('None');
    expect(viaStatus.status?.loadBalancer?.ingress?.[0]?.ip).toBe('192.0.2.12');
    const viaMain = await core.patchNamespacedService(
      { name: 'web', namespace: 'default', body: { status: { loadBalancer: { ingress: [] } } } },
      merge,
    );
    expect(viaMain.status?.loadBalancer?.ingress?.[0]?.ip).toBe('192.0.2.12');

    const invalid = await failure(
      core.patchNamespacedServiceStatus(
        {
          name: 'web',
          namespace: 'default',
          body: { status: { loadBalancer: { ingress: [{ ip: '192.0.2.300' }] } } },
        },
        merge,
      ),
    );
    expect(invalid).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(JSON.stringify(invalid.body.details)).toContain('status.loadBalancer.ingress[0].ip');
  });

  it('wipes what only applied to a LoadBalancer when a Service changes type, status included', async () => {
    const svc = await core.createNamespacedService({
      namespace: 'default',
      body: lbService('web', { loadBalancerClass: 'xlb.dev/xlb', externalTrafficPolicy: 'Local' }),
    });
    expect(svc.spec?.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    await core.patchNamespacedServiceStatus(
      {
        name: 'web',
        namespace: 'default',
        body: { status: { loadBalancer: { ingress: [{ ip: '192.0.2.7' }] } } },
      },
      merge,
    );
    const cluster = await core.patchNamespacedService(
      { name: 'web', namespace: 'default', body: { spec: { type: 'ClusterIP' } } },
      merge,
    );
    expect(cluster.spec?.clusterIP).toBe(svc.spec?.clusterIP);
    for (const gone of [
      'loadBalancerClass',
      'externalTrafficPolicy',
      'healthCheckNodePort',
      'allocateLoadBalancerNodePorts',
    ]) {
      expect(cluster.spec).not.toHaveProperty(gone);
    }
    expect(cluster.spec?.ports?.[0]).not.toHaveProperty('nodePort');
    expect(cluster.status).toEqual({ loadBalancer: {} });
    // A field the update itself sets that the new type forbids is still refused.
    const refused = await failure(
      core.patchNamespacedService(
        {
          name: 'web',
          namespace: 'default',
          body: { spec: { loadBalancerClass: 'other.example/lb' } },
        },
        merge,
      ),
    );
    expect(refused.code).toBe(422);
  });

  it('keeps a deleted Service while it has finalizers and removes it with the last one', async () => {
    const svc = lbService('web');
    svc.metadata!.finalizers = [CLEANUP];
    await core.createNamespacedService({ namespace: 'default', body: svc });

    const deleting = await core.deleteNamespacedService({ name: 'web', namespace: 'default' });
    expect(deleting.metadata?.deletionTimestamp).toBeInstanceOf(Date);
    const still = await core.readNamespacedService({ name: 'web', namespace: 'default' });
    expect(still.metadata?.finalizers).toEqual([CLEANUP]);

    const added = await failure(
      core.patchNamespacedService(
        {
          name: 'web',
          namespace: 'default',
          body: { metadata: { finalizers: [CLEANUP, 'example.com/other'] } },
        },
        merge,
      ),
    );
    expect(added.code).toBe(422);

    await core.patchNamespacedService({
      name: 'web',
      namespace: 'default',
      body: [
        { op: 'test', path: '/metadata/finalizers/0', value: CLEANUP },
        { op: 'remove', path: '/metadata/finalizers/0' },
      ],
    });
    expect(
      await failure(core.readNamespacedService({ name: 'web', namespace: 'default' })),
    ).toMatchObject({
      code: 404,
      reason: 'NotFound',
    });
    // Deleting a Service without finalizers answers with the object, as kube-apiserver does for Services.
    await core.createNamespacedService({ namespace: 'default', body: lbService('gone') });
    const gone = await core.deleteNamespacedService({ name: 'gone', namespace: 'default' });
    expect(gone.metadata?.name).toBe('gone');
  });

  it('applies strategic merge patches by merge key, as kubectl and client-node send them', async () => {
    const svc = lbService('web');
    svc.metadata!.finalizers = ['example.com/a'];
    await core.createNamespacedService({ namespace: 'default', body: svc });
    const p = (body: object) =>
      core.patchNamespacedService({ name: 'web', namespace: 'default', body }, strategic);

    let s = await p({
      spec: { ports: [{ name: 'https', port: 443 }] },
      metadata: { finalizers: [CLEANUP] },
    });
    expect(s.spec?.ports?.map((x) => x.port)).toEqual([80, 443]);
    expect(s.metadata?.finalizers).toEqual(['example.com/a', CLEANUP]);
    s = await p({
      spec: { ports: [{ $patch: 'delete', port: 80 }] },
      metadata: { '$deleteFromPrimitiveList/finalizers': ['example.com/a'] },
    });
    expect(s.spec?.ports?.map((x) => x.port)).toEqual([443]);
    expect(s.metadata?.finalizers).toEqual([CLEANUP]);
    s = await p({
      spec: {
        '$setElementOrder/ports': [{ port: 8443 }, { port: 443 }],
        ports: [{ name: 'alt', port: 8443 }],
      },
    });
    expect(s.spec?.ports?.map((x) => x.port)).toEqual([8443, 443]);

    // Conditions merge by type; ingress is atomic and replaced.
    const cond = (type: string, status: string) => ({
      type,
      status,
      reason: 'Test',
      message: '',
      lastTransitionTime: new Date('2026-01-01T00:00:00.250Z'),
    });
    await core.patchNamespacedServiceStatus(
      {
        name: 'web',
        namespace: 'default',
        body: {
          status: {
            conditions: [cond('A', 'True')],
            loadBalancer: { ingress: [{ ip: '192.0.2.1' }, { ip: '192.0.2.2' }] },
          },
        },
      },
      strategic,
    );
    const st = await core.patchNamespacedServiceStatus(
      {
        name: 'web',
        namespace: 'default',
        body: {
          status: {
            conditions: [cond('B', 'False')],
            loadBalancer: { ingress: [{ ip: '192.0.2.3' }] },
          },
        },
      },
      strategic,
    );
    expect(st.status?.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual([
      'A=True',
      'B=False',
    ]);
    expect(st.status?.conditions?.[0]?.lastTransitionTime?.toISOString()).toBe(
      '2026-01-01T00:00:00.000Z',
    );
    expect(st.status?.loadBalancer?.ingress?.map((i) => i.ip)).toEqual(['192.0.2.3']);
  });

  it('feeds an informer ADDED, MODIFIED and DELETED, bookmarks, and a relist after 410 Gone', async () => {
    const seen: string[] = [];
    const bookmarks: string[] = [];
    // client-node's ListWatch does not ask for bookmarks; a Watch that does
    // is how an informer gets them.
    class BookmarkingWatch extends Watch {
      override watch(
        path: string,
        params: Record<string, string | number | boolean | undefined>,
        cb: (
          phase: string,
          obj: { metadata?: { resourceVersion?: string } },
          raw?: unknown,
        ) => void,
        done: (err: unknown) => void,
      ): Promise<AbortController> {
        return super.watch(
          path,
          { ...params, allowWatchBookmarks: true },
          (phase, obj: { metadata?: { resourceVersion?: string } }, raw) => {
            if (phase === 'BOOKMARK') bookmarks.push(obj.metadata?.resourceVersion ?? '');
            cb(phase, obj, raw);
          },
          done,
        );
      }
    }
    const informer = new ListWatch<V1Service>(
      '/api/v1/namespaces/default/services',
      new BookmarkingWatch(kc),
      () => core.listNamespacedService({ namespace: 'default' }),
      false,
    );
    informer.on(ADD, (s) => seen.push(`ADDED ${s.metadata?.name}`));
    informer.on(UPDATE, (s) => seen.push(`MODIFIED ${s.metadata?.name}`));
    informer.on(DELETE, (s) => seen.push(`DELETED ${s.metadata?.name}`));
    informer.on(ERROR, (e) => seen.push(`ERROR ${String(e)}`));
    await informer.start();
    try {
      await until('the initial list', () => seen.includes('ADDED kubernetes'));
      await core.createNamespacedService({ namespace: 'default', body: lbService('web') });
      await until('ADDED', () => seen.includes('ADDED web'));
      server.apply({
        ...server.get('Service', 'web')!,
        status: { loadBalancer: { ingress: [{ ip: '192.0.2.5' }] } },
      });
      await until('MODIFIED', () => seen.includes('MODIFIED web'));
      expect(informer.get('web', 'default')?.status?.loadBalancer?.ingress?.[0]?.ip).toBe(
        '192.0.2.5',
      );
      await core.deleteNamespacedService({ name: 'web', namespace: 'default' });
      await until('DELETED', () => seen.includes('DELETED web'));

      // A write elsewhere moves the resourceVersion on; a bookmark brings the informer there.
      await kc.makeApiClient(CoordinationV1Api).createNamespacedLease({
        namespace: 'default',
        body: { metadata: { name: 'lock' }, spec: { holderIdentity: 'a' } },
      });
      server.bookmark();
      await until('a bookmark', () => bookmarks.length > 0);
      expect(informer.latestResourceVersion()).toBe(server.resourceVersion);

      // History forgotten and watches cut: the re-watch gets 410 Gone, the informer relists.
      const lists = () => server.requests({ verb: 'list', resource: 'services' }).length;
      expect(lists()).toBe(1);
      server.compact();
      server.closeWatches();
      await until('a relist', () => lists() === 2);
      // Watches: the first, the re-watch answered with 410, the one after the relist.
      await until(
        'a watch after the relist',
        () => server.requests({ verb: 'watch', resource: 'services' }).length === 3,
      );
      await core.createNamespacedService({ namespace: 'default', body: lbService('after') });
      await until('ADDED after the relist', () => seen.includes('ADDED after'));
      expect(seen.filter((e) => e.startsWith('ERROR'))).toEqual([]);
      expect(
        informer
          .list('default')
          .map((s) => s.metadata?.name)
          .sort(),
      ).toEqual(['after', 'kubernetes']);
    } finally {
      await informer.stop();
    }
  });

  it('lets a watch resume across an outage from the retained history', async () => {
    const seen: string[] = [];
    const informer = new ListWatch<V1Service>(
      '/api/v1/services',
      new Watch(kc),
      () => core.listServiceForAllNamespaces(),
      false,
    );
    informer.on(ADD, (s) => seen.push(`ADDED ${s.metadata?.name}`));
    informer.on(DELETE, (s) => seen.push(`DELETED ${s.metadata?.name}`));
    // client-node leaves restarting after an error to the caller, as xlb does.
    let stopped = false;
    informer.on(ERROR, () => {
      if (!stopped) setTimeout(() => void (stopped || informer.start()), 50);
    });
    await informer.start();
    try {
      await until('the initial list', () => seen.includes('ADDED kubernetes'));
      await server.disconnect();
      server.apply(lbService('while-down'));
      server.remove('Service', 'kubernetes');
      await new Promise((r) => setTimeout(r, 150));
      await server.reconnect();
      await until(
        'the missed events',
        () => seen.includes('ADDED while-down') && seen.includes('DELETED kubernetes'),
      );
      expect(server.requests({ verb: 'list', resource: 'services' })).toHaveLength(1);
    } finally {
      stopped = true;
      await informer.stop();
    }
  });

  it('serves Leases with optimistic concurrency', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const now = new Date();
    const lease = await leases.createNamespacedLease({
      namespace: 'kube-system',
      body: {
        metadata: { name: 'xlb-leader' },
        spec: {
          holderIdentity: 'agent-a',
          leaseDurationSeconds: 15,
          acquireTime: now,
          renewTime: now,
        },
      },
    });
    // client-node leaves MicroTime fields as the server's strings (six fractional digits).
    expect(String(lease.spec?.renewTime)).toBe(`${now.toISOString().slice(0, 23)}000Z`);
    const renewed = await leases.replaceNamespacedLease({
      name: 'xlb-leader',
      namespace: 'kube-system',
      body: { ...lease, spec: { ...lease.spec, renewTime: new Date(now.getTime() + 1000) } },
    });
    // agent-b read the lease before agent-a renewed it: its takeover conflicts.
    const takeover = await failure(
      leases.replaceNamespacedLease({
        name: 'xlb-leader',
        namespace: 'kube-system',
        body: { ...lease, spec: { ...lease.spec, holderIdentity: 'agent-b' } },
      }),
    );
    expect(takeover).toMatchObject({ code: 409, reason: 'Conflict' });
    const current = await leases.readNamespacedLease({
      name: 'xlb-leader',
      namespace: 'kube-system',
    });
    expect(current.spec?.holderIdentity).toBe('agent-a');
    expect(current.metadata?.resourceVersion).toBe(renewed.metadata?.resourceVersion);
  });

  it('serves Events through core/v1 and events.k8s.io/v1 from one store', async () => {
    const svc = await core.createNamespacedService({
      namespace: 'default',
      body: lbService('web'),
    });
    const ref = {
      apiVersion: 'v1',
      kind: 'Service',
      name: 'web',
      namespace: 'default',
      uid: svc.metadata!.uid!,
    };
    await core.createNamespacedEvent({
      namespace: 'default',
      body: {
        metadata: { generateName: 'web.' },
        involvedObject: ref,
        reason: 'IPAllocated',
        message: 'Assigned IP ["192.0.2.10"]',
        type: 'Normal',
        source: { component: 'xlb-controller' },
        firstTimestamp: new Date(),
        lastTimestamp: new Date(),
        count: 1,
      },
    });
    const events = kc.makeApiClient(EventsV1Api);
    await events.createNamespacedEvent({
      namespace: 'default',
      body: {
        metadata: { generateName: 'web.' },
        eventTime: new Date(),
        regarding: ref,
        reason: 'AllocationFailed',
        note: 'no pool matches',
        type: 'Warning',
        action: 'Allocate',
        reportingController: 'xlb.dev/controller',
        reportingInstance: 'xlb-controller-0',
      },
    });
    const coreList = await core.listNamespacedEvent({
      namespace: 'default',
      fieldSelector: `involvedObject.name=web,involvedObject.uid=${ref.uid}`,
    });
    expect(coreList.items.map((e) => `${e.reason}: ${e.message}`).sort()).toEqual([
      'AllocationFailed: no pool matches',
      'IPAllocated: Assigned IP ["192.0.2.10"]',
    ]);
    const v1List = await events.listNamespacedEvent({ namespace: 'default' });
    expect(v1List.items.map((e) => `${e.reason}: ${e.note}`).sort()).toEqual([
      'AllocationFailed: no pool matches',
      'IPAllocated: Assigned IP ["192.0.2.10"]',
    ]);
    expect(v1List.items.find((e) => e.reason === 'IPAllocated')?.regarding?.uid).toBe(ref.uid);

    const incomplete = await failure(
      events.createNamespacedEvent({
        namespace: 'default',
        body: { metadata: { name: 'bad' }, regarding: ref, reason: 'X', type: 'Normal' } as never,
      }),
    );
    expect(incomplete.code).toBe(422);
  });

  it('validates names and specs with 422 Invalid and field causes', async () => {
    const bad = await failure(
      core.createNamespacedService({
        namespace: 'default',
        body: lbService('9-starts-with-digit'),
      }),
    );
    expect(bad).toMatchObject({ code: 422, reason: 'Invalid' });
    const unnamed = await failure(
      core.createNamespacedService({
        namespace: 'default',
        body: lbService('web', { ports: [{ port: 80 }, { port: 81, protocol: 'ICMP' }] }),
      }),
    );
    const fields = (unnamed.body.details as { causes: { field: string }[] }).causes.map(
      (c) => c.field,
    );
    expect(fields).toEqual(
      expect.arrayContaining(['spec.ports[0].name', 'spec.ports[1].protocol']),
    );
    const noNamespace = await failure(
      core.createNamespacedService({ namespace: 'nowhere', body: lbService('web') }),
    );
    expect(noNamespace.code).toBe(404);
    const taken = await core.createNamespacedService({
      namespace: 'default',
      body: lbService('a', { loadBalancerIP: '192.0.2.9' }),
    });
    const clash = await failure(
      core.createNamespacedService({
        namespace: 'default',
        body: lbService('b', { clusterIP: taken.spec?.clusterIP }),
      }),
    );
    expect(clash.code).toBe(422);
    expect(String(clash.body.message)).toContain('provided IP is already allocated');
    const generated = await core.createNamespacedService({
      namespace: 'default',
      body: { ...lbService(''), metadata: { generateName: 'gen-' } },
    });
    expect(generated.metadata?.name).toMatch(/^gen-[a-z0-9]{5}$/);
  });

  it('drops undeclared fields with a warning, refuses them under strict validation, and 400s wrong types', async () => {
    const post = (query: string, body: object) =>
      fetch(`${server.url}/api/v1/namespaces/default/services${query}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    const loose = await post('', {
      metadata: { name: 'a' },
      spec: { ports: [{ port: 80, colour: 'red' }] },
    });
    expect(loose.status).toBe(201);
    expect(loose.headers.get('warning')).toBe('299 - "unknown field \\"spec.ports[0].colour\\""');
    expect((server.get('Service', 'a')?.spec as { ports: object[] }).ports[0]).not.toHaveProperty(
      'colour',
    );
    const strict = await post('?fieldValidation=Strict', {
      metadata: { name: 'b' },
      spec: { ports: [{ port: 80 }], extra: 1 },
    });
    expect(strict.status).toBe(400);
    expect(((await strict.json()) as { message: string }).message).toBe(
      'Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.extra"',
    );
    const typed = await post('', { metadata: { name: 'c' }, spec: { ports: [{ port: '80' }] } });
    expect(typed.status).toBe(400);
  });

  it('answers discovery, OpenAPI and unknown paths like kube-apiserver, and close() ends open watches', async () => {
    const get = async (path: string, accept = 'application/json') => {
      const r = await fetch(`${server.url}${path}`, { headers: { Accept: accept } });
      return {
        status: r.status,
        type: r.headers.get('content-type'),
        body: (await r.json()) as Record<string, unknown>,
      };
    };
    expect((await get('/version')).body).toMatchObject({
      major: '1',
      minor: '35',
      gitVersion: 'v1.35.2',
    });
    expect((await get('/api')).body).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    const groups = (await get('/apis')).body.groups as { name: string }[];
    expect(groups.map((g) => g.name)).toEqual(
      expect.arrayContaining([
        'discovery.k8s.io',
        'coordination.k8s.io',
        'events.k8s.io',
        'apiextensions.k8s.io',
      ]),
    );
    const aggregated = await get(
      '/apis',
      'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList',
    );
    expect(aggregated.type).toBe(
      'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList',
    );
    const core = (await get('/api/v1')).body.resources as { name: string; verbs: string[] }[];
    expect(core.find((r) => r.name === 'services/status')?.verbs).toEqual([
      'get',
      'patch',
      'update',
    ]);
    const index = (await get('/openapi/v3')).body.paths as Record<
      string,
      { serverRelativeURL: string }
    >;
    const v1 = await get(index['api/v1']!.serverRelativeURL);
    expect(Object.keys(v1.body.paths as object)).toContain(
      '/api/v1/namespaces/{namespace}/services/{name}/status',
    );
    const missing = await get('/apis/nothing.example.com/v1/things');
    expect(missing).toMatchObject({
      status: 404,
      body: { kind: 'Status', reason: 'NotFound', code: 404 },
    });

    const watch = await fetch(`${server.url}/api/v1/namespaces/default/services?watch=1`);
    const reader = watch.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(JSON.parse(first.split('\n')[0]!)).toMatchObject({
      type: 'ADDED',
      object: { metadata: { name: 'kubernetes' } },
    });
    expect(server.openWatches).toBe(1);
    await server.close();
    expect((await reader.read().catch(() => ({ done: true }))).done).toBe(true);
  });

  it('injects faults and logs requests', async () => {
    server.failNext({
      verb: 'list',
      resource: 'Service',
      count: 2,
      code: 503,
      retryAfterSeconds: 1,
    });
    for (let i = 0; i < 2; i++) {
      expect(await failure(core.listNamespacedService({ namespace: 'default' }))).toMatchObject({
        code: 503,
        reason: 'ServiceUnavailable',
      });
    }
    expect((await core.listNamespacedService({ namespace: 'default' })).items).toHaveLength(1);
    server.failNext({
      verb: 'patch',
      resource: 'services',
      subresource: 'status',
      code: 409,
      reason: 'Conflict',
    });
    await core.createNamespacedService({ namespace: 'default', body: lbService('web') });
    const status = { status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } };
    expect(
      await failure(
        core.patchNamespacedServiceStatus(
          { name: 'web', namespace: 'default', body: status },
          merge,
        ),
      ),
    ).toMatchObject({ code: 409 });
    await core.patchNamespacedServiceStatus(
      { name: 'web', namespace: 'default', body: status },
      merge,
    );

    const log = server.requests({ resource: 'services' });
    expect(log.map((r) => `${r.verb} ${r.code}`)).toEqual([
      'list 503',
      'list 503',
      'list 200',
      'create 201',
      'patch 409',
      'patch 200',
    ]);
    expect(log[4]).toMatchObject({
      subresource: 'status',
      contentType: 'application/merge-patch+json',
      name: 'web',
    });
  });

  it('serves custom resources from a CRD: defaults, pruning, status, generation, no strategic merge', async () => {
    const crds = kc.makeApiClient(ApiextensionsV1Api);
    const crd = await crds.createCustomResourceDefinition({ body: widgetCRD });
    expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
    expect(crd.metadata?.finalizers).toContain('customresourcecleanup.apiextensions.k8s.io');

    const custom = kc.makeApiClient(CustomObjectsApi);
    const key = { group: 'example.com', version: 'v1', namespace: 'default', plural: 'widgets' };
    const w = (await custom.createNamespacedCustomObject({
      ...key,
      body: {
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        metadata: { name: 'w1' },
        spec: { size: 1, shape: 'round' },
        status: { ready: true },
      },
    })) as {
      metadata: { generation: number; resourceVersion: string };
      spec: Record<string, unknown>;
      status?: unknown;
    };
    expect(w.spec).toEqual({ size: 1, color: 'blue' });
    expect(w.status).toBeUndefined();
    expect(w.metadata.generation).toBe(1);

    const invalid = await failure(
      custom.createNamespacedCustomObject({
        ...key,
        body: {
          apiVersion: 'example.com/v1',
          kind: 'Widget',
          metadata: { name: 'w2' },
          spec: { size: 0, color: 'green' },
        },
      }),
    );
    expect(invalid.code).toBe(422);
    expect(String(invalid.body.message)).toMatch(/spec\.size.*spec\.color|spec\.color.*spec\.size/);

    const st = (await custom.patchNamespacedCustomObjectStatus(
      { ...key, name: 'w1', body: { status: { ready: true }, spec: { size: 5 } } },
      merge,
    )) as typeof w;
    expect(st.status).toEqual({ ready: true });
    expect(st.spec.size).toBe(1);
    expect(st.metadata.generation).toBe(1);
    const grown = (await custom.patchNamespacedCustomObject(
      { ...key, name: 'w1', body: { spec: { size: 2 } } },
      merge,
    )) as typeof w;
    expect(grown.metadata.generation).toBe(2);
    expect(
      (
        await failure(
          custom.patchNamespacedCustomObject(
            { ...key, name: 'w1', body: { spec: { size: 3 } } },
            strategic,
          ),
        )
      ).code,
    ).toBe(415);
    const { resourceVersion: _, ...noVersion } = grown.metadata;
    expect(
      (
        await failure(
          custom.replaceNamespacedCustomObject({
            ...key,
            name: 'w1',
            body: { ...grown, metadata: noVersion },
          }),
        )
      ).code,
    ).toBe(422);

    // Deleting the CRD deletes its objects, then it goes and the resource is no longer served.
    await crds.deleteCustomResourceDefinition({ name: 'widgets.example.com' });
    expect(server.objects('CustomResourceDefinition')).toEqual([]);
    expect((await failure(custom.listNamespacedCustomObject(key))).code).toBe(404);
  });

  it('empties a deleted namespace before removing it', async () => {
    await core.createNamespace({ body: { metadata: { name: 'demo' } } });
    const svc = lbService('web');
    svc.metadata!.finalizers = [CLEANUP];
    await core.createNamespacedService({ namespace: 'demo', body: svc });
    const ns = await core.deleteNamespace({ name: 'demo' });
    expect((ns as { status?: { phase?: string } }).status?.phase).toBe('Terminating');
    expect(server.get('Service', 'web', 'demo')?.metadata.deletionTimestamp).toBeDefined();
    expect(
      await failure(core.createNamespacedService({ namespace: 'demo', body: lbService('late') })),
    ).toMatchObject({ code: 403, reason: 'Forbidden' });
    server.apply({
      ...server.get('Service', 'web', 'demo')!,
      metadata: { ...server.get('Service', 'web', 'demo')!.metadata, finalizers: [] },
    });
    expect(server.get('Namespace', 'demo')).toBeUndefined();
  });
});

describe('API server double, with the real kubectl', () => {
  let server: ApiServer;

  beforeAll(() => {
    expect(
      haveKubectl(),
      `${kubectlPath} is missing: run the set-up command (scripts/setup.sh)`,
    ).toBe(true);
  });

  beforeEach(async () => {
    server = await ApiServer.start();
  });

  afterEach(async () => {
    await server.close();
  });

  async function ok(args: string[], input?: string): Promise<string> {
    const r = await kubectl(server.url, args, input === undefined ? {} : { input });
    expect(r.stderr, `kubectl ${args.join(' ')}`).toBe('');
    expect(r.status, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  }

  const manifest = (ports: string): string => `apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: Service
metadata:
  name: example
  namespace: demo
  labels: {app: example}
spec:
  type: LoadBalancer
  selector: {app: example}
  ports:
${ports}---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: example-1
  namespace: demo
  labels: {kubernetes.io/service-name: example}
addressType: IPv4
ports:
- {name: http, port: 9376, protocol: TCP}
endpoints:
- addresses: [192.0.2.20]
  conditions: {ready: true}
`;

  it('kubectl apply creates, and after an edit patches (strategic merge by port)', async () => {
    const first = await ok(
      ['apply', '-f', '-'],
      manifest('  - {name: http, port: 8765, targetPort: 9376}\n'),
    );
    expect(first.split('\n')).toEqual([
      'namespace/demo created',
      'service/example created',
      'endpointslice.discovery.k8s.io/example-1 created',
      '',
    ]);
    // kubectl asks for strict field validation: a misspelt field is refused.
    const typo = await kubectl(server.url, ['apply', '-f', '-'], {
      input: manifest('  - {name: http, port: 8765, targetPort: 9376}\n').replace(
        'selector:',
        'selectr:',
      ),
    });
    expect(typo.status).toBe(1);
    expect(typo.stderr).toContain('strict decoding error: unknown field "spec.selectr"');
    const nodePort = server.get('Service', 'example', 'demo')?.spec as {
      ports: { nodePort: number }[];
    };
    server.clearRequests();
    const second = await ok(
      ['apply', '-f', '-'],
      manifest('  - {name: metrics, port: 9100}\n  - {name: http, port: 8765, targetPort: 9376}\n'),
    );
    expect(second).toContain('namespace/demo unchanged');
    expect(second).toContain('service/example configured');
    const patches = server.requests({ verb: 'patch', resource: 'services' });
    expect(patches.map((r) => r.contentType)).toEqual(['application/strategic-merge-patch+json']);
    const spec = server.get('Service', 'example', 'demo')?.spec as {
      ports: { name: string; nodePort: number }[];
    };
    expect(spec.ports.map((p) => p.name)).toEqual(['metrics', 'http']);
    // The allocated node port of the port that stayed is kept.
    expect(spec.ports[1]?.nodePort).toBe(nodePort.ports[0]?.nodePort);
    const third = await ok(
      ['apply', '-f', '-'],
      manifest('  - {name: http, port: 8765, targetPort: 9376}\n'),
    );
    expect(third).toContain('service/example configured');
    expect(
      (server.get('Service', 'example', 'demo')?.spec as { ports: unknown[] }).ports,
    ).toHaveLength(1);
  });

  it('kubectl get svc -o wide and -o json, describe with LoadBalancer Ingress and events', async () => {
    await ok(['apply', '-f', '-'], manifest('  - {name: http, port: 8765, targetPort: 9376}\n'));
    const svc = server.get('Service', 'example', 'demo')!;
    const pending = await ok(['get', 'svc', '-n', 'demo', '-o', 'wide']);
    expect(pending).toMatch(
      /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\s+SELECTOR\n/,
    );
    expect(pending).toMatch(
      /example\s+LoadBalancer\s+10\.\d+\.\d+\.\d+\s+<pending>\s+8765:3\d{4}\/TCP\s+\d+s\s+app=example/,
    );

    // The controller's part, written through the status subresource as xlb does.
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    await core.patchNamespacedServiceStatus(
      {
        name: 'example',
        namespace: 'demo',
        body: { status: { loadBalancer: { ingress: [{ ip: '192.0.2.100', ipMode: 'VIP' }] } } },
      },
      merge,
    );
    await core.createNamespacedEvent({
      namespace: 'demo',
      body: {
        metadata: { generateName: 'example.' },
        involvedObject: {
          apiVersion: 'v1',
          kind: 'Service',
          name: 'example',
          namespace: 'demo',
          uid: svc.metadata.uid!,
        },
        reason: 'IPAllocated',
        message: 'Assigned IP ["192.0.2.100"]',
        type: 'Normal',
        source: { component: 'xlb-controller' },
        firstTimestamp: new Date(),
        lastTimestamp: new Date(),
        count: 1,
      },
    });
    expect(await ok(['get', 'svc', 'example', '-n', 'demo', '-o', 'wide'])).toMatch(
      /example\s+LoadBalancer\s+\S+\s+192\.0\.2\.100\s/,
    );
    const json = JSON.parse(
      await ok(['get', 'svc', 'example', '-n', 'demo', '-o', 'json']),
    ) as V1Service;
    expect(json.status?.loadBalancer?.ingress).toEqual([{ ip: '192.0.2.100', ipMode: 'VIP' }]);
    expect(json.metadata?.uid).toBe(svc.metadata.uid);

    const described = await ok(['describe', 'services', 'example', '-n', 'demo']);
    expect(described).toMatch(/^LoadBalancer Ingress:\s+192\.0\.2\.100 \(VIP\)$/m);
    expect(described).toMatch(/^Endpoints:\s+192\.0\.2\.20:9376$/m);
    expect(described).toMatch(
      /Normal\s+IPAllocated\s+\d+s\s+xlb-controller\s+Assigned IP \["192\.0\.2\.100"\]/,
    );
    expect(await ok(['get', 'events', '-n', 'demo'])).toMatch(
      /Normal\s+IPAllocated\s+service\/example\s+Assigned IP/,
    );
  });

  it('kubectl apply of the chart CRD, then of a pool; get, delete', async () => {
    const crd = await readFile(join(projectRoot(), 'charts', 'xlb', 'crds', 'ippool.yaml'), 'utf8');
    expect(await ok(['apply', '-f', '-'], crd)).toBe(
      'customresourcedefinition.apiextensions.k8s.io/ippools.xlb.dev created\n',
    );
    const pool =
      'apiVersion: xlb.dev/v1alpha1\nkind: IPPool\nmetadata: {name: pool-a}\nspec:\n  addresses: [192.0.2.0/28]\n';
    expect(await ok(['apply', '-f', '-'], pool)).toBe('ippool.xlb.dev/pool-a created\n');
    expect(server.get('IPPool', 'pool-a')?.spec).toMatchObject({
      autoAssign: true,
      disabled: false,
    });
    // Strict field validation, as kubectl asks for it: a misspelt field is refused.
    const typo = await kubectl(server.url, ['apply', '-f', '-'], {
      input: pool.replace('addresses', 'adresses'),
    });
    expect(typo.status).toBe(1);
    expect(typo.stderr).toContain('unknown field "spec.adresses"');
    expect(await ok(['get', 'ippools'])).toMatch(
      /^NAME\s+ADDRESSES\s+READY\s+REASON\s+IPV4 FREE\s+IPV6 FREE\s+AGE\npool-a\s+\["192\.0\.2\.0\/28"\]\s+/,
    );
    expect(await ok(['delete', 'ippool', 'pool-a'])).toBe('ippool.xlb.dev "pool-a" deleted\n');
    expect(server.objects('IPPool')).toEqual([]);
    expect(await ok(['delete', '-f', '-'], crd)).toContain(
      'customresourcedefinition.apiextensions.k8s.io "ippools.xlb.dev" deleted',
    );
    expect((await kubectl(server.url, ['get', 'ippools'])).stderr).toContain(
      `the server doesn't have a resource type "ippools"`,
    );
  });

  it('kubectl create service and namespace (protobuf request bodies) and delete', async () => {
    expect(await ok(['create', 'namespace', 'shop'])).toBe('namespace/shop created\n');
    expect(
      await ok(['create', 'service', 'loadbalancer', 'example', '-n', 'shop', '--tcp=8765:9376']),
    ).toBe('service/example created\n');
    expect(server.get('Service', 'example', 'shop')?.spec).toMatchObject({
      type: 'LoadBalancer',
      selector: { app: 'example' },
      ports: [{ name: '8765-9376', port: 8765, targetPort: 9376, protocol: 'TCP' }],
    });
    expect(await ok(['delete', 'namespace', 'shop'])).toBe('namespace "shop" deleted\n');
    expect(server.get('Namespace', 'shop')).toBeUndefined();
    expect(server.objects('Service', 'shop')).toEqual([]);
  });
});
