// The shortcuts in front of the datapath's hash maps (bpf/include/flowcache.h),
// through bpf_prog_test_run: the VIP filter computed in TypeScript agrees with
// the kernel's for hundreds of addresses, and a cached verdict never outlives
// what it was derived from (frontends, source ranges, backends, VIPs, time).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { EventName } from '../control/datapath/abi.js';
import type { Datapath } from '../control/datapath/load.js';
import { flowCacheSlot, vipFilterBit } from '../control/datapath/flowcache.js';
import {
  CLIENT4,
  CLIENT6,
  ETH_IN,
  VIP4,
  expectPacket,
  installBackend,
  installService,
  loadFixtureDatapath,
  localPod,
  type FixtureService,
} from './support/datapath-fixture.js';
import { ipv4, ipv6, packet, payload, tcp } from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';

/** Backends of this file: ids 200-209 (localPod). */
const pod = localPod;

function frame(dst: string, dport: number, client: string, cport: number): Buffer {
  const ip = client.includes(':') ? ipv6({ src: client, dst }) : ipv4({ src: client, dst });
  return packet(ETH_IN, ip, tcp({ sport: cport, dport, seq: 1, flags: ['ACK'] }), payload('x'));
}

/** Deterministic pseudo-random addresses (xorshift), away from the fixtures' own. */
function randomAddresses(n: number, family: 4 | 6, seed: number): string[] {
  let x = seed >>> 0;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const out = new Set<string>();
  while (out.size < n) {
    const r = next();
    out.add(
      family === 4
        ? `10.${(r >>> 16) & 255}.${(r >>> 8) & 255}.${r & 255}`
        : `2001:db8:77:${(r >>> 16).toString(16)}::${(r & 0xffff).toString(16)}`,
    );
  }
  return [...out];
}

describe('datapath flow cache and VIP filter (XDP test_run)', () => {
  let dp: Datapath;

  beforeAll(() => {
    requirePrivileges('datapath-flowcache');
    dp = loadFixtureDatapath();
    for (let id = 200; id < 210; id++) installBackend(dp, pod(id, id % 2 === 0 ? 4 : 6));
  });
  afterAll(() => dp?.close());

  const service = (svc: FixtureService): FixtureService => {
    installService(dp, svc);
    return svc;
  };

  /** The frame as DNAT leaves it for `backend`. */
  const dnat = (client: string, cport: number, backend: number): Buffer =>
    frame(pod(backend, client.includes(':') ? 6 : 4).address, 8080, client, cport);

  it('recognises every one of 600 random VIPs (IPv4 and IPv6) through the filter, and forgets them when deleted', () => {
    const vips = [...randomAddresses(300, 4, 0x1234), ...randomAddresses(300, 6, 0x9876)];
    for (const vip of vips) dp.maps.setVip(vip, 0);
    try {
      // A VIP with no frontend on the port is dropped: only possible when the
      // kernel found the filter bit TypeScript set for that address.
      for (const vip of vips) {
        const client = vip.includes(':') ? CLIENT6 : CLIENT4;
        expectPacket(dp, frame(vip, 4242, client, 1000), {
          verdict: 'drop',
          slot: { drop: 'NO_FRONTEND' },
        });
      }
    } finally {
      for (const vip of vips) dp.maps.deleteVip(vip);
    }
    for (const vip of vips.slice(0, 50)) {
      const client = vip.includes(':') ? CLIENT6 : CLIENT4;
      expectPacket(dp, frame(vip, 4242, client, 1000), {
        verdict: 'pass',
        slot: { outcome: 'PASS_NOT_VIP' },
      });
    }
    // The fixtures' own VIP kept its bit.
    expectPacket(dp, frame(VIP4, 4242, CLIENT4, 1000), {
      verdict: 'drop',
      slot: { drop: 'NO_FRONTEND' },
    });
  });

  it('keeps a filter bit two VIPs share until the last of them is deleted', () => {
    const first = '10.0.0.1';
    let twin: string | undefined;
    for (let i = 2; i < 1 << 22 && twin === undefined; i++) {
      const a = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      if (vipFilterBit(a) === vipFilterBit(first)) twin = a;
    }
    expect(twin, 'some address shares the first one’s bit').toBeDefined();
    dp.maps.setVip(first, 0);
    dp.maps.setVip(twin!, 0);
    dp.maps.deleteVip(first);
    expectPacket(dp, frame(twin!, 4242, CLIENT4, 1000), {
      verdict: 'drop',
      slot: { drop: 'NO_FRONTEND' },
    });
    dp.maps.deleteVip(twin!);
    expectPacket(dp, frame(twin!, 4242, CLIENT4, 1000), {
      verdict: 'pass',
      slot: { outcome: 'PASS_NOT_VIP' },
    });
  });

  it.each([
    { family: 'IPv4', client: CLIENT4, vip: '203.0.113.77', id: 80, a: 200 },
    { family: 'IPv6', client: CLIENT6, vip: '2001:db8:10::77', id: 81, a: 201 },
  ])(
    '$family: a cached flow is re-decided at once when source ranges start excluding it',
    ({ client, vip, id, a }) => {
      dp.maps.setVip(vip, 1);
      const svc = service({ id, vip, port: 7000, proto: 'TCP', backends: [a] });
      const out = dnat(client, 40000, a);
      const input = frame(vip, 7000, client, 40000);
      expectPacket(dp, input, {
        verdict: 'pass',
        output: out,
        slot: { outcome: 'LOCAL' },
        events: { CONNTRACK_MISS: 1 },
      });
      expectPacket(dp, input, {
        verdict: 'pass',
        output: out,
        slot: { outcome: 'LOCAL' },
        events: { FLOW_CACHE_HIT: 1 },
      });
      // The frontend now admits only a range the client is not in.
      service({
        ...svc,
        sourceRanges: [client.includes(':') ? '2001:db8:ffff::/48' : '10.99.0.0/16'],
      });
      expectPacket(dp, input, { verdict: 'drop', slot: { drop: 'SOURCE_RANGE' } });
      dp.maps.deleteFrontend({ vip, port: 7000, proto: 'TCP' });
      expectPacket(dp, input, { verdict: 'drop', slot: { drop: 'NO_FRONTEND' } });
      dp.maps.deleteVip(vip);
      expectPacket(dp, input, { verdict: 'pass', slot: { outcome: 'PASS_NOT_VIP' } });
    },
  );

  it('a cached flow follows its backend: gone balances afresh, moved to another address DNATs there', () => {
    const vip = '203.0.113.78';
    dp.maps.setVip(vip, 1);
    service({ id: 82, vip, port: 7001, proto: 'TCP', backends: [202] });
    const input = frame(vip, 7001, CLIENT4, 40001);
    expectPacket(dp, input, {
      verdict: 'pass',
      output: dnat(CLIENT4, 40001, 202),
      slot: { outcome: 'LOCAL' },
      events: { CONNTRACK_MISS: 1 },
    });
    // Same id, new pod address: no packet may reach the old one.
    installBackend(dp, { ...pod(202, 4), address: '203.0.113.252' });
    expectPacket(dp, input, {
      verdict: 'pass',
      output: frame('203.0.113.252', 8080, CLIENT4, 40001),
      slot: { outcome: 'LOCAL' },
      events: { CONNTRACK_HIT: 1 },
    });
    installBackend(dp, pod(202, 4));
    dp.maps.installMaglevTable(82, [204, 204, 204, 204, 204, 204, 204]);
    dp.maps.clearBackend(202);
    try {
      expectPacket(dp, input, {
        verdict: 'pass',
        output: dnat(CLIENT4, 40001, 204),
        slot: { outcome: 'LOCAL' },
        events: { BACKEND_GONE: 1, CONNTRACK_MISS: 1 },
      });
      expectPacket(dp, input, {
        verdict: 'pass',
        output: dnat(CLIENT4, 40001, 204),
        slot: { outcome: 'LOCAL' },
        events: { FLOW_CACHE_HIT: 1 },
      });
    } finally {
      installBackend(dp, pod(202, 4));
    }
  });

  it('a packet the full path would drop never takes its flow’s cached verdict (TTL 1)', () => {
    const vip = '203.0.113.79';
    dp.maps.setVip(vip, 1);
    service({ id: 83, vip, port: 7002, proto: 'TCP', backends: [206] });
    const input = frame(vip, 7002, CLIENT4, 40002);
    expectPacket(dp, input, {
      verdict: 'pass',
      output: dnat(CLIENT4, 40002, 206),
      slot: { outcome: 'LOCAL' },
      events: { CONNTRACK_MISS: 1 },
    });
    const ttl1 = packet(
      ETH_IN,
      ipv4({ src: CLIENT4, dst: vip, ttl: 1 }),
      tcp({ sport: 40002, dport: 7002, seq: 1, flags: ['ACK'] }),
      payload('x'),
    );
    expectPacket(dp, ttl1, { verdict: 'drop', slot: { drop: 'TTL_EXPIRED' } });
  });

  it('a cached verdict expires after a second: the full path runs again and renews the connection entry', async () => {
    const vip = '203.0.113.80';
    dp.maps.setVip(vip, 1);
    service({ id: 84, vip, port: 7003, proto: 'TCP', backends: [208] });
    const input = frame(vip, 7003, CLIENT4, 40003);
    expectPacket(dp, input, {
      verdict: 'pass',
      output: dnat(CLIENT4, 40003, 208),
      slot: { outcome: 'LOCAL' },
      events: { CONNTRACK_MISS: 1 },
    });
    expectPacket(dp, input, {
      verdict: 'pass',
      output: dnat(CLIENT4, 40003, 208),
      slot: { outcome: 'LOCAL' },
      events: { FLOW_CACHE_HIT: 1 },
    });
    const lastSeen = (): bigint =>
      [...dp.maps.flows()].find((f) => f.port === 7003 && f.clientPort === 40003)!.lastSeenNs;
    const before = lastSeen();
    await new Promise((r) => setTimeout(r, 1100));
    expectPacket(dp, input, {
      verdict: 'pass',
      output: dnat(CLIENT4, 40003, 208),
      slot: { outcome: 'LOCAL' },
      events: { CONNTRACK_HIT: 1 },
    });
    expectPacket(dp, input, {
      verdict: 'pass',
      output: dnat(CLIENT4, 40003, 208),
      slot: { outcome: 'LOCAL' },
      events: { FLOW_CACHE_HIT: 1 },
    });
    expect(lastSeen()).toBeGreaterThan(before + 1_000_000_000n);
  });

  it('two flows in one cache slot (as TypeScript computes it) evict each other; the connection table keeps both', () => {
    const vip = '203.0.113.81';
    dp.maps.setVip(vip, 1);
    service({ id: 85, vip, port: 7004, proto: 'TCP', backends: [200] });
    type Flow = [client: string, port: number];
    const slot = ([client, clientPort]: Flow): number =>
      flowCacheSlot({ client, clientPort, vip, port: 7004, proto: 'TCP' });
    const first: Flow = [CLIENT4, 20000];
    let second: Flow | undefined;
    for (let host = 1; host < 255 && !second; host++) {
      for (let port = 1024; port < 65536 && !second; port++) {
        const f: Flow = [`192.0.2.${host}`, port];
        if (f[0] !== first[0] && slot(f) === slot(first)) second = f;
      }
    }
    expect(second, 'some flow shares the first one’s slot').toBeDefined();
    const send = ([client, cport]: Flow, events: Partial<Record<EventName, number>>) =>
      expectPacket(dp, frame(vip, 7004, client, cport), {
        verdict: 'pass',
        output: dnat(client, cport, 200),
        slot: { outcome: 'LOCAL' },
        events,
      });
    send(first, { CONNTRACK_MISS: 1 });
    send(second!, { CONNTRACK_MISS: 1 });
    for (let i = 0; i < 3; i++) {
      send(first, { CONNTRACK_HIT: 1 });
      send(second!, { CONNTRACK_HIT: 1 });
    }
    // A flow in another slot is not disturbed.
    const other: Flow = [CLIENT4, 20001];
    expect(slot(other)).not.toBe(slot(first));
    send(other, { CONNTRACK_MISS: 1 });
    send(first, { CONNTRACK_HIT: 1 });
    send(other, { FLOW_CACHE_HIT: 1 });
    send(first, { FLOW_CACHE_HIT: 1 });
  });
});
