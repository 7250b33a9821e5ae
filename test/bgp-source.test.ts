// The Kubernetes source reads BGPPeers and BGPAdvertisements when asked to,
// over real HTTP against the API server double: without their CRDs the other
// kinds sync and readiness is not held back (the error names the CRD file);
// once installed, the objects arrive with the CRD's defaults. Secrets (MD5
// passwords) are read only in the agent's namespace, with only the values
// peers reference, and follow rotation, new references and deletion.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import {
  ALL_SOURCE_KINDS,
  BGP_SOURCE_KINDS,
  KubernetesSource,
  SOURCE_KINDS,
} from '../control/k8s/source.js';
import { SecretLookupError } from '../control/bgp/config.js';
import { ClusterStore } from '../control/store/cluster-store.js';
import { storeSecretLookup } from '../control/store/secret-lookup.js';
import { until } from '../control/topology/agent-harness.js';
import { ApiServer, type KubeObject } from '../control/apiserver-double/index.js';

const crd = (file: string) =>
  parse(
    readFileSync(join(import.meta.dirname, '..', 'charts', 'xlb', 'crds', file), 'utf8'),
  ) as KubeObject;

let server: ApiServer | undefined;
let source: KubernetesSource | undefined;
afterEach(async () => {
  await source?.stop();
  source = undefined;
  await server?.close();
  server = undefined;
});

describe('the Kubernetes source and the BGP kinds', () => {
  it('syncs without the BGP CRDs, says which file to apply, and reads the objects once they exist', async () => {
    expect(ALL_SOURCE_KINDS).toEqual([...SOURCE_KINDS, ...BGP_SOURCE_KINDS]);
    server = await ApiServer.start({ kubernetesService: false });
    server.apply(crd('ippool.yaml'));
    const store = new ClusterStore();
    source = new KubernetesSource({
      kubeConfig: server.kubeConfig(),
      store,
      kinds: ALL_SOURCE_KINDS,
      backoff: { initialMs: 20, maxMs: 100, jitter: 0 },
      healthyAfterMs: 150,
      requestTimeoutMs: 2000,
      log: pino({ level: 'silent' }),
    });
    source.start();
    const s = source;
    await s.whenSynced();
    for (const kind of ['BGPPeer', 'BGPAdvertisement'] as const) {
      await until(
        () => `the ${kind} error (${JSON.stringify(s.status().kinds[kind])})`,
        () => s.status().kinds[kind]?.lastError,
      );
    }
    expect(s.status().kinds.BGPPeer!.lastError).toContain('charts/xlb/crds/bgppeer.yaml');
    expect(s.status().kinds.BGPAdvertisement!.lastError).toContain(
      'charts/xlb/crds/bgpadvertisement.yaml',
    );
    expect(s.isSynced()).toBe(true);

    server.apply(crd('bgppeer.yaml'));
    server.apply(crd('bgpadvertisement.yaml'));
    server.apply({
      apiVersion: 'xlb.dev/v1alpha1',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerAddress: '192.0.2.1', peerASN: 65000, localASN: 65001 },
    });
    server.apply({
      apiVersion: 'xlb.dev/v1alpha1',
      kind: 'BGPAdvertisement',
      metadata: { name: 'all' },
      spec: { ipPools: ['default'] },
    });
    await until('the peer', () => store.bgpPeers().length === 1);
    await until('the advertisement', () => store.bgpAdvertisements().length === 1);
    // The API server filled the CRD's defaults, as the zod schema would.
    expect(store.bgpPeers()[0]!.spec).toMatchObject({ port: 179, holdTime: 90, passive: false });
    expect(store.bgpAdvertisements()[0]!.spec).toMatchObject({ communities: [] });
  });

  it('refuses a kind it cannot watch', () => {
    expect(
      () =>
        new KubernetesSource({
          kubeConfig: {} as never,
          store: new ClusterStore(),
          kinds: ['BGPSession' as never],
        }),
    ).toThrow(/unknown kind 'BGPSession': the source reads .*BGPPeer, BGPAdvertisement/);
  });
});

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

function secret(name: string, namespace: string, data: Record<string, string>) {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, annotations: { owner: 'network-team' } },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  };
}

function peer(name: string, passwordSecretRef: Record<string, string>) {
  return {
    apiVersion: 'xlb.dev/v1alpha1',
    kind: 'BGPPeer',
    metadata: { name },
    spec: { peerAddress: '192.0.2.1', peerASN: 65000, localASN: 65001, passwordSecretRef },
  };
}

describe('the Kubernetes source and the Secrets of BGP passwords', () => {
  it("reads only its own namespace's Secrets, keeps only referenced values, and follows rotation, new references and deletion", async () => {
    server = await ApiServer.start({ kubernetesService: false });
    server.apply(crd('bgppeer.yaml'));
    server.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'xlb-system' } });
    server.apply(secret('bgp-auth', 'xlb-system', { password: 'pw-one', other: 'pw-unused' }));
    server.apply(secret('spare', 'xlb-system', { token: 'pw-spare' }));
    server.apply(secret('bgp-auth', 'default', { password: 'pw-elsewhere' }));
    server.apply(peer('tor', { name: 'bgp-auth' }));
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const store = new ClusterStore();
    source = new KubernetesSource({
      kubeConfig: server.kubeConfig(),
      store,
      kinds: ALL_SOURCE_KINDS,
      secretNamespace: 'xlb-system',
      backoff: { initialMs: 20, maxMs: 100, jitter: 0 },
      healthyAfterMs: 150,
      requestTimeoutMs: 2000,
      log: pino({ level: 'debug' }, sink),
    });
    source.start();
    const s = source;
    const lookup = storeSecretLookup(store, 'xlb-system');
    const password = (name: string, key = 'password') => {
      try {
        return lookup({ name, key });
      } catch {
        return undefined;
      }
    };

    await until('the password', () => password('bgp-auth') === 'pw-one');
    expect(store.secrets()).toEqual([
      {
        metadata: { namespace: 'xlb-system', name: 'bgp-auth' },
        keys: ['other', 'password'],
        data: { password: 'pw-one' },
      },
      { metadata: { namespace: 'xlb-system', name: 'spare' }, keys: ['token'], data: {} },
    ]);
    expect(s.status().secrets).toMatchObject({ synced: true, errors: 0 });
    // Least privilege: one namespaced list and watch, never all namespaces.
    const secretRequests = server.requests({ resource: 'secrets' });
    expect(secretRequests.some((r) => r.verb === 'list')).toBe(true);
    for (const r of secretRequests) {
      expect(['list', 'watch']).toContain(r.verb);
      expect(r.namespace).toBe('xlb-system');
      expect(r.url.startsWith('/api/v1/namespaces/xlb-system/secrets?')).toBe(true);
    }
    expect(() => lookup({ namespace: 'default', name: 'bgp-auth', key: 'password' })).toThrow(
      /Secret default\/bgp-auth is in namespace 'default', but the agent reads Secrets only in its own namespace 'xlb-system'/,
    );

    // Rotation arrives by the watch.
    server.apply(secret('bgp-auth', 'xlb-system', { password: 'pw-two', other: 'pw-unused' }));
    await until('the rotated password', () => password('bgp-auth') === 'pw-two');

    // A peer referencing a key dropped on arrival: the Secrets are listed again.
    const lists = server.requests({ resource: 'secrets', verb: 'list' }).length;
    server.apply(peer('tor-b', { name: 'spare', key: 'token' }));
    await until('the newly referenced key', () => password('spare', 'token') === 'pw-spare');
    expect(server.requests({ resource: 'secrets', verb: 'list' })).toHaveLength(lists + 1);

    // The reference gone: its value is dropped from the store at once.
    server.remove('BGPPeer', 'tor-b');
    await until(
      'the value dropped',
      () => store.secret('xlb-system', 'spare')?.data.token === undefined,
    );
    expect(store.secret('xlb-system', 'spare')).toEqual({
      metadata: { namespace: 'xlb-system', name: 'spare' },
      keys: ['token'],
      data: {},
    });

    // Deleted: the lookup says so, naming the Secret.
    server.remove('Secret', 'bgp-auth', 'xlb-system');
    await until('the deletion', () => store.secret('xlb-system', 'bgp-auth') === undefined);
    expect(() => lookup({ name: 'bgp-auth', key: 'password' })).toThrow(SecretLookupError);
    expect(() => lookup({ name: 'bgp-auth', key: 'password' })).toThrow(
      'Secret xlb-system/bgp-auth does not exist (or is not read yet)',
    );

    const logged = lines.join('');
    expect(logged).toContain('Secret: listed');
    for (const value of ['pw-one', 'pw-two', 'pw-unused', 'pw-spare', 'pw-elsewhere'])
      expect(logged).not.toContain(value);
  });

  it('says how to grant Secrets when forbidden, without holding readiness back, and reads them once allowed', async () => {
    server = await ApiServer.start({ kubernetesService: false });
    server.apply(secret('bgp-auth', 'default', { password: 'pw-one' }));
    server.failNext({ resource: 'secrets', verb: 'list', code: 403, count: 3 });
    const store = new ClusterStore();
    source = new KubernetesSource({
      kubeConfig: server.kubeConfig(),
      store,
      kinds: ['Node'],
      secretNamespace: 'default',
      backoff: { initialMs: 20, maxMs: 50, jitter: 0 },
      log: pino({ level: 'silent' }),
    });
    source.start();
    const s = source;
    await s.whenSynced();
    const error = await until(
      () => `the Secret error (${JSON.stringify(s.status().secrets)})`,
      () => s.status().secrets?.lastError,
    );
    expect(error).toContain(
      'the agent may not list and watch Secrets in namespace default: grant it with a Role and RoleBinding there',
    );
    // The retries go on; once allowed, the Secret arrives (without peers watched, no value is kept).
    await until('the Secret', () => store.secret('default', 'bgp-auth'));
    expect(store.secret('default', 'bgp-auth')).toEqual({
      metadata: { namespace: 'default', name: 'bgp-auth' },
      keys: ['password'],
      data: {},
    });
  });

  it('reads no Secrets unless given the namespace, and refuses an empty one', async () => {
    server = await ApiServer.start({ kubernetesService: false });
    server.apply(secret('bgp-auth', 'default', { password: 'pw-one' }));
    const store = new ClusterStore();
    source = new KubernetesSource({
      kubeConfig: server.kubeConfig(),
      store,
      kinds: ['Node'],
      backoff: { initialMs: 20, maxMs: 100, jitter: 0 },
      log: pino({ level: 'silent' }),
    });
    source.start();
    await source.whenSynced();
    expect(source.status().secrets).toBeUndefined();
    expect(server.requests({ resource: 'secrets' })).toEqual([]);
    expect(store.secrets()).toEqual([]);
    expect(
      () => new KubernetesSource({ kubeConfig: server!.kubeConfig(), store, secretNamespace: '' }),
    ).toThrow('secretNamespace must name a namespace (it is empty)');
  });
});

describe('the API server double and Secrets', () => {
  it('merges stringData into data as kube-apiserver does, and refuses data that is not base64 without echoing it', async () => {
    server = await ApiServer.start({ kubernetesService: false });
    const post = (body: unknown) =>
      fetch(`${server!.url}/api/v1/namespaces/default/secrets`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const created = await post({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'bgp-auth' },
      data: { password: b64('pw-old'), other: b64('pw-other') },
      stringData: { password: 'pw-new' },
    });
    expect(created.status).toBe(201);
    const body = (await created.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      type: 'Opaque',
      data: { password: b64('pw-new'), other: b64('pw-other') },
    });
    expect(body.stringData).toBeUndefined();
    expect(server.get('Secret', 'bgp-auth')?.stringData).toBeUndefined();

    const refused = await post({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'broken' },
      data: { password: 'pw plain!' },
    });
    expect(refused.status).toBe(422);
    const status = await refused.text();
    expect(status).toContain('illegal base64 data');
    expect(status).not.toContain('pw plain!');
  });
});
