// The Kubernetes source reads BGPPeers and BGPAdvertisements when asked to,
// over real HTTP against the API server double: without their CRDs the other
// kinds sync and readiness is not held back (the error names the CRD file);
// once installed, the objects arrive with the CRD's defaults.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import {
  ALL_SOURCE_KINDS,
  BGP_SOURCE_KINDS,
  KubernetesSource,
  SOURCE_KINDS,
} from '../control/k8s/source.js';
import { ClusterStore } from '../control/store/cluster-store.js';
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
