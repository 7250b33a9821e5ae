// The TypeScript flow hash must pick the same Maglev slot as the kernel:
// `xlb explain` and every exact-bytes fixture depend on it.
import ipaddr from 'ipaddr.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { flowHash, maglevSlot } from '../control/datapath/flowhash.js';
import { loadDatapath, type Datapath } from '../control/datapath/load.js';
import { XdpAction } from '../native/index.js';
import { eth, ipv4, ipv6, packet, tcp, udp } from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';

const SEED = 0x5eed1234;
const M = 251;
const E = eth({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' });

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('flow hash: TypeScript and kernel agree', () => {
  let dp: Datapath;
  const backends4 = Array.from({ length: 7 }, (_, i) => `10.1.0.${i + 1}`);
  const backends6 = Array.from({ length: 7 }, (_, i) => `fd00:1::${i + 1}`);
  // A table that is not a simple pattern: slot i -> backend (i * 5 + i >> 3) % 7.
  const table = Array.from({ length: M }, (_, i) => ((i * 5 + (i >> 3)) % 7) + 1);

  beforeAll(() => {
    requirePrivileges('datapath-flowhash');
    dp = loadDatapath({ hashSeed: SEED, nodeIPv4: '198.51.100.1', nodeIPv6: '2001:db8:ff::1' });
    const m = dp.maps;
    backends4.forEach((a, i) =>
      m.setBackend(i + 1, {
        address: a,
        port: 8080,
        nodeAddress: '198.51.100.1',
        state: 'active',
        local: true,
      }),
    );
    backends6.forEach((a, i) =>
      m.setBackend(i + 11, {
        address: a,
        port: 8080,
        nodeAddress: '2001:db8:ff::1',
        state: 'active',
        local: true,
      }),
    );
    m.setVip('203.0.113.10', 2);
    m.setVip('2001:db8:10::10', 1);
    m.setFrontend({ vip: '203.0.113.10', port: 80, proto: 'TCP' }, { id: 1 });
    m.setFrontend(
      { vip: '203.0.113.10', port: 53, proto: 'UDP' },
      { id: 2, affinityTimeoutSeconds: 60 },
    );
    m.setFrontend({ vip: '2001:db8:10::10', port: 443, proto: 'TCP' }, { id: 3 });
    // Services 1 and 3 get a first table and then the real one, which goes
    // into the other half of the same inner map: the kernel must read the
    // half the header names (service 2 stays in half 0).
    m.installMaglevTable(
      1,
      table.map(() => 1),
    );
    m.installMaglevTable(1, table);
    m.installMaglevTable(2, table);
    m.installMaglevTable(
      3,
      table.map(() => 11),
    );
    m.installMaglevTable(
      3,
      table.map((b) => b + 10),
    );
    expect([1, 2, 3].map((id) => m.maglevTableHeader(id)?.half)).toEqual([1, 0, 1]);
  });
  afterAll(() => dp?.close());

  it('sends 600 random flows to the backend the TypeScript hash predicts', () => {
    const rand = rng(42);
    for (let i = 0; i < 600; i++) {
      const kind = i % 3;
      const sport = 1024 + Math.floor(rand() * 64000);
      const octets = [
        1 + Math.floor(rand() * 254),
        Math.floor(rand() * 256),
        Math.floor(rand() * 256),
        1 + Math.floor(rand() * 254),
      ];
      const client4 = `192.0.${octets[2]}.${octets[3]}`;
      const client6 = `2001:db8:${octets[0]!.toString(16)}::${octets[1]!.toString(16)}:${octets[3]!.toString(16)}`;
      let frame: Buffer;
      let expected: string;
      if (kind === 0) {
        frame = packet(
          E,
          ipv4({ src: client4, dst: '203.0.113.10' }),
          tcp({ sport, dport: 80, flags: ['SYN'] }),
        );
        expected =
          backends4[
            table[
              maglevSlot({ client: client4, clientPort: sport, port: 80, proto: 'TCP' }, SEED, M)
            ]! - 1
          ]!;
      } else if (kind === 1) {
        frame = packet(E, ipv4({ src: client4, dst: '203.0.113.10' }), udp({ sport, dport: 53 }));
        const slot = maglevSlot(
          { client: client4, clientPort: sport, port: 53, proto: 'UDP' },
          SEED,
          M,
          true,
        );
        expected = backends4[table[slot]! - 1]!;
      } else {
        frame = packet(
          E,
          ipv6({ src: client6, dst: '2001:db8:10::10' }),
          tcp({ sport, dport: 443, flags: ['SYN'] }),
        );
        expected =
          backends6[
            table[
              maglevSlot({ client: client6, clientPort: sport, port: 443, proto: 'TCP' }, SEED, M)
            ]! - 1
          ]!;
      }
      const r = dp.xdp.testRun({ data: frame });
      expect(r.retval).toBe(XdpAction.pass);
      // DNAT to a local backend shows the choice in the destination address.
      const dst = ipaddr
        .fromByteArray([...(kind === 2 ? r.data.subarray(38, 54) : r.data.subarray(30, 34))])
        .toString();
      expect(dst, `flow ${i}`).toBe(expected);
    }
  });

  it('hashes only the client address with session affinity', () => {
    const a = flowHash(
      { client: '192.0.2.7', clientPort: 1000, port: 53, proto: 'UDP' },
      SEED,
      true,
    );
    const b = flowHash(
      { client: '192.0.2.7', clientPort: 2000, port: 80, proto: 'TCP' },
      SEED,
      true,
    );
    const c = flowHash(
      { client: '192.0.2.8', clientPort: 1000, port: 53, proto: 'UDP' },
      SEED,
      true,
    );
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(
      flowHash({ client: '192.0.2.7', clientPort: 1000, port: 53, proto: 'UDP' }, SEED + 1, true),
    ).not.toBe(a);
  });
});
