// Connection table and session affinity through bpf_prog_test_run: which
// backend a flow's packets reach as the Maglev table and the backends change
// under it, with exact DNAT bytes, the counter slot and events of every packet,
// and the per-service / per-backend new-flow counters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { EventName } from '../control/datapath/abi.js';
import type { Datapath } from '../control/datapath/load.js';
import {
  CLIENT4,
  CLIENT6,
  ETH_IN,
  VIP4,
  VIP6,
  expectPacket,
  installBackend,
  installService,
  loadFixtureDatapath,
  localPod,
  maglevBackend,
  tableOf,
  type FixtureBackend,
  type FixtureService,
} from './support/datapath-fixture.js';
import { ipv4, ipv6, packet, payload, tcp } from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';

/** Backends of this file: ids 150-199 (localPod). */
const pod = localPod;

function frame(svcOrPod: { dst: string; dport: number }, client: string, cport: number): Buffer {
  const ip =
    client.includes(':') === false
      ? ipv4({ src: client, dst: svcOrPod.dst, flags: ['DF'] })
      : ipv6({ src: client, dst: svcOrPod.dst });
  return packet(
    ETH_IN,
    ip,
    tcp({ sport: cport, dport: svcOrPod.dport, seq: 1000, flags: ['ACK'] }),
    payload('data'),
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('datapath fixtures: connection table and session affinity (XDP test_run)', () => {
  let dp: Datapath;
  const backends = new Map<number, FixtureBackend>();

  beforeAll(() => {
    requirePrivileges('datapath-fixtures-conntrack');
    dp = loadFixtureDatapath();
    for (let id = 150; id < 170; id++) {
      const b = pod(id, id % 2 === 0 ? 4 : 6);
      backends.set(id, b);
      installBackend(dp, b);
    }
  });
  afterAll(() => dp?.close());

  function service(svc: FixtureService): FixtureService {
    installService(dp, svc);
    return svc;
  }

  /**
   * Sends one packet of (client, cport) to the service and checks it is DNATed
   * to backend `want` with exactly `events`, and whether it counted a new flow.
   */
  function send(
    svc: FixtureService,
    client: string,
    cport: number,
    want: number,
    events: Partial<Record<EventName, number>>,
    newFlow: boolean,
  ): void {
    const b = backends.get(want)!;
    const svcBefore = dp.maps.serviceCounters(svc.id);
    const beBefore = dp.maps.backendCounters(want);
    expectPacket(dp, frame({ dst: svc.vip, dport: svc.port }, client, cport), {
      verdict: 'pass',
      output: frame({ dst: b.address, dport: b.port }, client, cport),
      slot: { outcome: 'LOCAL' },
      events,
    });
    const svcAfter = dp.maps.serviceCounters(svc.id);
    const beAfter = dp.maps.backendCounters(want);
    expect({
      service: svcAfter.packets - svcBefore.packets,
      serviceNew: svcAfter.newFlows - svcBefore.newFlows,
      backend: beAfter.packets - beBefore.packets,
      backendNew: beAfter.newFlows - beBefore.newFlows,
    }).toEqual({
      service: 1n,
      serviceNew: newFlow ? 1n : 0n,
      backend: 1n,
      backendNew: newFlow ? 1n : 0n,
    });
  }

  const flowOf = (client: string, cport: number, port: number) =>
    [...dp.maps.flows()].find(
      (f) => f.client === client && f.clientPort === cport && f.port === port,
    );

  const reverseOf = (client: string, cport: number, port: number) =>
    [...dp.maps.reverseEntries()].filter(
      (r) => r.client === client && r.clientPort === cport && r.port === port,
    );

  const MISS = { CONNTRACK_MISS: 1 };
  const HIT = { CONNTRACK_HIT: 1 };
  const CACHED = { FLOW_CACHE_HIT: 1 };
  /** The next packet of an established flow takes the full path (a connection-table hit). */
  const uncache = (): void => dp.maps.invalidateFlowCache();

  it.each([
    { family: 'IPv4', client: CLIENT4, vip: VIP4, id: 50, a: 150, b: 152 },
    { family: 'IPv6', client: CLIENT6, vip: VIP6, id: 51, a: 151, b: 153 },
  ])(
    '$family: first packet misses, later ones hit (flow cache, then the connection table) and stay on their backend after the table changed; a new flow follows the new table',
    ({ client, vip, id, a, b }) => {
      const svc = service({ id, vip, port: 9001, proto: 'TCP', backends: [a] });
      send(svc, client, 50000, a, MISS, true);
      expect(flowOf(client, 50000, 9001)).toMatchObject({ backendId: a, serviceId: id, vip });
      dp.maps.installMaglevTable(id, tableOf([b]));
      expect(dp.maps.maglevTable(id)).toEqual(tableOf([b]));
      send(svc, client, 50000, a, CACHED, false);
      send(svc, client, 50001, b, MISS, true);
      send(svc, client, 50001, b, CACHED, false);
      uncache();
      send(svc, client, 50000, a, HIT, false);
      send(svc, client, 50000, a, CACHED, false);
      send(svc, client, 50001, b, HIT, false);
    },
  );

  it.each([
    { family: 'IPv4', client: CLIENT4, vip: VIP4, id: 52, a: 154, b: 156 },
    { family: 'IPv6', client: CLIENT6, vip: VIP6, id: 53, a: 155, b: 157 },
  ])(
    '$family: a terminating backend (out of the table) keeps its established flow',
    ({ client, vip, id, a, b }) => {
      const svc = service({ id, vip, port: 9002, proto: 'TCP', backends: [a] });
      send(svc, client, 50000, a, MISS, true);
      installBackend(dp, { ...backends.get(a)!, state: 'terminating' });
      dp.maps.installMaglevTable(id, tableOf([b]));
      send(svc, client, 50000, a, CACHED, false);
      uncache();
      send(svc, client, 50000, a, HIT, false);
      send(svc, client, 50002, b, MISS, true);
      installBackend(dp, backends.get(a)!);
    },
  );

  it.each([
    { family: 'IPv4', client: CLIENT4, vip: VIP4, id: 54, a: 158, b: 160 },
    { family: 'IPv6', client: CLIENT6, vip: VIP6, id: 55, a: 159, b: 161 },
  ])(
    '$family: a gone backend makes its flow balance afresh (BACKEND_GONE), pinned to the new pick',
    ({ client, vip, id, a, b }) => {
      const svc = service({ id, vip, port: 9003, proto: 'TCP', backends: [a] });
      send(svc, client, 50000, a, MISS, true);
      dp.maps.installMaglevTable(id, tableOf([b]));
      dp.maps.clearBackend(a);
      try {
        send(svc, client, 50000, b, { BACKEND_GONE: 1, CONNTRACK_MISS: 1 }, true);
        expect(flowOf(client, 50000, 9003)).toMatchObject({ backendId: b, serviceId: id });
        send(svc, client, 50000, b, CACHED, false);
      } finally {
        installBackend(dp, backends.get(a)!);
      }
    },
  );

  it.each([
    { family: 'IPv4', client: CLIENT4, vip: VIP4, id: 56, a: 162 },
    { family: 'IPv6', client: CLIENT6, vip: VIP6, id: 57, a: 163 },
  ])(
    '$family: a flow whose backend is gone and still the only one in the table: NO_BACKEND',
    ({ client, vip, id, a }) => {
      const svc = service({ id, vip, port: 9004, proto: 'TCP', backends: [a] });
      send(svc, client, 50000, a, MISS, true);
      dp.maps.clearBackend(a);
      try {
        expectPacket(dp, frame({ dst: vip, dport: 9004 }, client, 50000), {
          verdict: 'drop',
          slot: { drop: 'NO_BACKEND' },
          events: { BACKEND_GONE: 1, CONNTRACK_MISS: 1 },
        });
      } finally {
        installBackend(dp, backends.get(a)!);
      }
    },
  );

  it.each([
    { family: 'IPv4', client: CLIENT4, vip: VIP4, id: 58, ids: [164, 166, 168] },
    { family: 'IPv6', client: CLIENT6, vip: VIP6, id: 59, ids: [165, 167, 169] },
  ])(
    '$family session affinity: other source ports of the client reach the same backend, each with its reverse entry',
    ({ client, vip, id, ids }) => {
      const svc = service({
        id,
        vip,
        port: 9005,
        proto: 'TCP',
        backends: ids,
        affinityTimeoutSeconds: 60,
      });
      const want = maglevBackend(svc, client, 50000);
      send(svc, client, 50000, want, MISS, true);
      // The pin is per client: its key has no source port.
      expect(flowOf(client, 0, 9005)).toMatchObject({ backendId: want, serviceId: id });
      dp.maps.installMaglevTable(id, tableOf(ids.filter((x) => x !== want)));
      for (const cport of [50001, 50002, 61000]) {
        send(svc, client, cport, want, { AFFINITY_HIT: 1 }, false);
      }
      // tc needs a reverse entry for every connection, or the pod's replies
      // to the later ones would leave with the pod's address.
      const b = backends.get(want)!;
      for (const cport of [50000, 50001, 50002, 61000]) {
        expect(reverseOf(client, cport, 9005), `reverse entry for client port ${cport}`).toEqual([
          { pod: b.address, podPort: b.port, client, clientPort: cport, vip, port: 9005 },
        ]);
      }
    },
  );

  it('session affinity expires after its timeout (AFFINITY_EXPIRED) and the client is balanced afresh; an established flow is refreshed', async () => {
    const v4 = service({
      id: 60,
      vip: VIP4,
      port: 9006,
      proto: 'TCP',
      backends: [150],
      affinityTimeoutSeconds: 1,
    });
    const v6 = service({
      id: 61,
      vip: VIP6,
      port: 9006,
      proto: 'TCP',
      backends: [151],
      affinityTimeoutSeconds: 1,
    });
    const plain = service({ id: 62, vip: VIP4, port: 9007, proto: 'TCP', backends: [152] });
    send(v4, CLIENT4, 50000, 150, MISS, true);
    send(v6, CLIENT6, 50000, 151, MISS, true);
    send(plain, CLIENT4, 50000, 152, MISS, true);
    send(v4, CLIENT4, 50001, 150, { AFFINITY_HIT: 1 }, false);
    dp.maps.installMaglevTable(60, tableOf([154]));
    dp.maps.installMaglevTable(61, tableOf([155]));
    const seen = flowOf(CLIENT4, 50000, 9007)!.lastSeenNs;
    await sleep(1100);
    send(v4, CLIENT4, 50002, 154, { AFFINITY_EXPIRED: 1, CONNTRACK_MISS: 1 }, true);
    send(v6, CLIENT6, 50002, 155, { AFFINITY_EXPIRED: 1, CONNTRACK_MISS: 1 }, true);
    send(v4, CLIENT4, 50003, 154, { AFFINITY_HIT: 1 }, false);
    expect(flowOf(CLIENT4, 0, 9006)).toMatchObject({ backendId: 154 });
    expect(flowOf(CLIENT6, 0, 9006)).toMatchObject({ backendId: 155 });
    // A hit more than a second after the last refresh renews the entry (the
    // flow cache's entry has expired by then too).
    send(plain, CLIENT4, 50000, 152, HIT, false);
    expect(flowOf(CLIENT4, 50000, 9007)!.lastSeenNs).toBeGreaterThan(seen + 1_000_000_000n);
  });

  it('session affinity with a 0-second timeout balances every packet afresh', () => {
    const svc = service({
      id: 63,
      vip: VIP6,
      port: 9008,
      proto: 'TCP',
      backends: [153],
      affinityTimeoutSeconds: 0,
    });
    send(svc, CLIENT6, 50000, 153, MISS, true);
    send(svc, CLIENT6, 50000, 153, { AFFINITY_EXPIRED: 1, CONNTRACK_MISS: 1 }, true);
  });
});
