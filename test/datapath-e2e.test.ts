// Real sockets through real namespaces: client -> router -> node (XDP) -> pod,
// locally and through a tunnel to the other node, with direct server return.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ADDRESSES, POD_PORTS, Testbed } from '../control/topology/testbed.js';
import { applyService, type TestService } from './support/lb-services.js';
import { requirePrivileges } from './support/privileged.js';

const VIP4 = '192.0.2.200';
const VIP6 = '2001:db8:f::200';
const REMOTE_VIP4 = '192.0.2.201';
const REMOTE_VIP6 = '2001:db8:f::201';
const DRAIN_VIP4 = '192.0.2.202';
const CLIENT = ADDRESSES.client;

const outcome = (bed: Testbed, node: 'a' | 'b', name: string): bigint =>
  bed.nodes[node].datapath.maps.outcomes().find((r) => r.name === name)!.packets;
const event = (bed: Testbed, node: 'a' | 'b', name: string): bigint =>
  bed.nodes[node].datapath.maps.events().find((r) => r.name === name)!.packets;

describe('datapath end to end', () => {
  let bed: Testbed;

  beforeAll(async () => {
    requirePrivileges('datapath-e2e');
    bed = await Testbed.create({
      pods: [
        { name: 'web-a1', node: 'a' },
        { name: 'web-a2', node: 'a' },
        { name: 'web-a3', node: 'a' },
        { name: 'web-b1', node: 'b' },
      ],
    });
    // Served on node-a by a pod on node-a: DNAT there.
    const local: TestService = {
      id: 1,
      vips: [VIP4, VIP6],
      port: 80,
      proto: 'TCP',
      backends: [{ id: 1, pod: 'web-a1', port: POD_PORTS.http }],
    };
    const localUdp: TestService = {
      id: 2,
      vips: [VIP4, VIP6],
      port: 53,
      proto: 'UDP',
      backends: [{ id: 2, pod: 'web-a1', port: POD_PORTS.udp }],
    };
    // Served by a pod on node-b only: node-a tunnels, node-b answers directly.
    const remote: TestService = {
      id: 3,
      vips: [REMOTE_VIP4, REMOTE_VIP6],
      port: 80,
      proto: 'TCP',
      backends: [{ id: 4, pod: 'web-b1', port: POD_PORTS.http }],
    };
    const remoteUdp: TestService = {
      id: 4,
      vips: [REMOTE_VIP4, REMOTE_VIP6],
      port: 53,
      proto: 'UDP',
      backends: [{ id: 5, pod: 'web-b1', port: POD_PORTS.udp }],
    };
    for (const s of [local, localUdp, remote, remoteUdp]) applyService(bed, s);
  });
  afterAll(() => bed?.destroy());

  it('HTTP to a VIP reaches a pod on the same node, which sees the client address (IPv4 and IPv6)', async () => {
    const r4 = await bed.http(`http://${VIP4}/`);
    expect(r4.status).toBe(200);
    expect(r4.remote).toBe(VIP4);
    expect(r4.body).toMatchObject({ pod: 'web-a1', client: CLIENT.v4 });
    const r6 = await bed.http(`http://[${VIP6}]/`);
    expect(r6.remote).toBe(VIP6);
    expect(r6.body).toMatchObject({ pod: 'web-a1', client: CLIENT.v6 });
    expect(outcome(bed, 'a', 'LOCAL')).toBeGreaterThan(0n);
    expect(event(bed, 'a', 'TC_REVERSE_NAT')).toBeGreaterThan(0n);
  });

  it('UDP to a VIP is answered from VIP:port, and the pod sees the client', async () => {
    for (const vip of [VIP4, VIP6]) {
      const r = await bed.udp(vip, 53, 'hello');
      expect(r.from).toBe(vip);
      expect(r.fromPort).toBe(53);
      expect(r.body).toMatchObject({
        pod: 'web-a1',
        client: vip === VIP4 ? CLIENT.v4 : CLIENT.v6,
        echo: 'hello',
      });
    }
  });

  it('tunnels to the node that runs the pod, which replies to the client directly (IPv4 and IPv6)', async () => {
    const tunnelled = (): bigint =>
      outcome(bed, 'a', 'ENCAP_TX') +
      outcome(bed, 'a', 'ENCAP_REDIRECT') +
      outcome(bed, 'a', 'ENCAP_KERNEL');
    const before = {
      encap: tunnelled(),
      decap: event(bed, 'b', 'DECAPSULATED'),
      snatA: event(bed, 'a', 'TC_REVERSE_NAT'),
      snatB: event(bed, 'b', 'TC_REVERSE_NAT'),
    };
    for (const [vip, client] of [
      [REMOTE_VIP4, CLIENT.v4],
      [REMOTE_VIP6, CLIENT.v6],
    ] as const) {
      const url = vip.includes(':') ? `http://[${vip}]/` : `http://${vip}/`;
      const r = await bed.http(url);
      expect(r.remote).toBe(vip);
      expect(r.body).toMatchObject({ pod: 'web-b1', client });
      const u = await bed.udp(vip, 53);
      expect(u.from).toBe(vip);
      expect(u.body).toMatchObject({ pod: 'web-b1', client });
    }
    expect(tunnelled() - before.encap).toBeGreaterThanOrEqual(4n);
    expect(event(bed, 'b', 'DECAPSULATED') - before.decap).toBeGreaterThanOrEqual(4n);
    // Replies were rewritten on node-b, never on node-a: they left node-b directly.
    expect(event(bed, 'b', 'TC_REVERSE_NAT') - before.snatB).toBeGreaterThanOrEqual(4n);
    expect(event(bed, 'a', 'TC_REVERSE_NAT') - before.snatA).toBe(0n);
  });

  it('keeps established connections on their pod when the backend set changes; new ones follow the new table', async () => {
    const svc: TestService = {
      id: 10,
      vips: [DRAIN_VIP4],
      port: 9000,
      proto: 'TCP',
      backends: [
        { id: 11, pod: 'web-a1', port: POD_PORTS.tcp },
        { id: 12, pod: 'web-a2', port: POD_PORTS.tcp },
      ],
    };
    applyService(bed, svc);
    const sessions = await Promise.all(
      Array.from({ length: 6 }, () => bed.session(DRAIN_VIP4, 9000)),
    );
    try {
      const first = await Promise.all(sessions.map((s, i) => s.send(`hello ${i}`)));
      for (const a of first) expect(a.client).toBe(CLIENT.v4);
      expect(new Set(first.map((a) => a.pod)).size).toBeGreaterThanOrEqual(1);

      // The set changes: web-a3 joins and takes the whole table.
      applyService(bed, {
        ...svc,
        backends: [...svc.backends, { id: 13, pod: 'web-a3', port: POD_PORTS.tcp }],
      });
      for (const node of Object.values(bed.nodes))
        node.datapath.maps.installMaglevTable(svc.id, Array(251).fill(13));

      const again = await Promise.all(sessions.map((s, i) => s.send(`again ${i}`)));
      expect(again.map((a) => a.pod)).toEqual(first.map((a) => a.pod));
      const fresh = await bed.session(DRAIN_VIP4, 9000);
      try {
        expect((await fresh.send('new')).pod).toBe('web-a3');
      } finally {
        fresh.close();
      }
    } finally {
      for (const s of sessions) s.close();
    }
  });

  it('drains a terminating backend: its connection keeps flowing, new connections avoid it', async () => {
    const svc: TestService = {
      id: 20,
      vips: [DRAIN_VIP4],
      port: 9001,
      proto: 'TCP',
      backends: [{ id: 21, pod: 'web-a2', port: POD_PORTS.tcp }],
    };
    applyService(bed, svc);
    const old = await bed.session(DRAIN_VIP4, 9001);
    try {
      expect((await old.send('before')).pod).toBe('web-a2');
      applyService(bed, {
        ...svc,
        backends: [
          { id: 21, pod: 'web-a2', port: POD_PORTS.tcp, state: 'terminating' },
          { id: 22, pod: 'web-a3', port: POD_PORTS.tcp },
        ],
      });
      expect((await old.send('during drain')).pod).toBe('web-a2');
      for (let i = 0; i < 4; i++) {
        const s = await bed.session(DRAIN_VIP4, 9001);
        try {
          expect((await s.send(`new ${i}`)).pod).toBe('web-a3');
        } finally {
          s.close();
        }
      }
      expect((await old.send('still')).pod).toBe('web-a2');
    } finally {
      old.close();
    }
  });
});
