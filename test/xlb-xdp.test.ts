// The xlb XDP program through bpf_prog_test_run: verdict, exact output bytes
// and the counter each frame lands in, for well-formed and broken input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { XlbStatName } from '../control/datapath/abi.js';
import { loadDatapath, type LoadedDatapath } from '../control/datapath/load.js';
import { readStats } from '../control/datapath/stats.js';
import type { BpfMap, BpfProgram } from '../native/index.js';
import {
  eth,
  hopByHop,
  icmpEcho,
  icmpv6Echo,
  ipv4,
  ipv6,
  packet,
  payload,
  tcp,
  udp,
  vlan,
} from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';
import { expectXdp, PacketMismatchError } from './support/xdp-runner.js';

const E = eth({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' });
const V4 = { src: '192.0.2.1', dst: '198.51.100.10' };
const V6 = { src: '2001:db8::1', dst: '2001:db8:1::10' };

interface Case {
  name: string;
  frame: Buffer;
  stat: XlbStatName;
}

const cases: Case[] = [
  {
    name: 'IPv4 TCP SYN',
    frame: packet(E, ipv4(V4), tcp({ sport: 40000, dport: 80, flags: ['SYN'] })),
    stat: 'IPV4_TCP',
  },
  {
    name: 'IPv4 UDP',
    frame: packet(E, ipv4(V4), udp({ sport: 5353, dport: 53 }), payload('q')),
    stat: 'IPV4_UDP',
  },
  {
    name: 'IPv4 ICMP echo',
    frame: packet(E, ipv4(V4), icmpEcho({ id: 1, seq: 1 })),
    stat: 'IPV4_ICMP',
  },
  {
    name: 'IPv4 GRE (other)',
    frame: packet(E, ipv4({ ...V4, protocol: 47 }), payload('gre!')),
    stat: 'IPV4_OTHER',
  },
  {
    name: 'IPv4 with options',
    frame: packet(
      E,
      ipv4({ ...V4, options: Buffer.from([0x94, 0x04, 0, 0]) }),
      udp({ sport: 1, dport: 2 }),
    ),
    stat: 'IPV4_UDP',
  },
  {
    name: '802.1Q tagged IPv4 TCP',
    frame: packet(E, vlan({ vid: 100 }), ipv4(V4), tcp({ sport: 1, dport: 443, flags: ['ACK'] })),
    stat: 'IPV4_TCP',
  },
  {
    name: 'QinQ tagged IPv6 UDP',
    frame: packet(
      E,
      vlan({ vid: 10, tpid: 0x88a8 }),
      vlan({ vid: 20 }),
      ipv6(V6),
      udp({ sport: 1, dport: 2 }),
    ),
    stat: 'IPV6_UDP',
  },
  {
    name: 'IPv6 TCP',
    frame: packet(E, ipv6(V6), tcp({ sport: 40000, dport: 80, flags: ['SYN'] })),
    stat: 'IPV6_TCP',
  },
  {
    name: 'IPv6 ICMPv6 echo',
    frame: packet(E, ipv6(V6), icmpv6Echo({ id: 1, seq: 1 })),
    stat: 'IPV6_ICMP',
  },
  {
    name: 'IPv6 hop-by-hop before UDP (extension headers are not walked yet)',
    frame: packet(E, ipv6(V6), hopByHop(), udp({ sport: 1, dport: 2 })),
    stat: 'IPV6_OTHER',
  },
  {
    name: 'ARP',
    frame: packet(
      eth({ src: '02:00:00:00:00:01', dst: 'ff:ff:ff:ff:ff:ff', type: 0x0806 }),
      payload(Buffer.alloc(28)),
    ),
    stat: 'NON_IP',
  },
  {
    name: 'VLAN tag cut short',
    frame: packet(E, vlan({ vid: 5, type: 0x0800 })).subarray(0, 16),
    stat: 'MALFORMED',
  },
  {
    name: 'IPv4 header cut short',
    frame: packet(E, ipv4(V4), udp({ sport: 1, dport: 2 })).subarray(0, 30),
    stat: 'MALFORMED',
  },
  {
    name: 'IPv4 IHL below 5',
    frame: packet(E, ipv4({ ...V4, ihl: 4 }), udp({ sport: 1, dport: 2 })),
    stat: 'MALFORMED',
  },
  {
    name: 'IPv4 IHL beyond the frame',
    frame: packet(E, ipv4({ ...V4, ihl: 15, protocol: 17 }), payload(Buffer.alloc(4))),
    stat: 'MALFORMED',
  },
  {
    name: 'IPv4 ethertype with version 6 inside',
    frame: packet(
      eth({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02', type: 0x0800 }),
      ipv6(V6),
    ),
    stat: 'MALFORMED',
  },
  {
    name: 'IPv6 header cut short',
    frame: packet(E, ipv6(V6), udp({ sport: 1, dport: 2 })).subarray(0, 40),
    stat: 'MALFORMED',
  },
];

describe('xlb_xdp: classify and count', () => {
  let datapath: LoadedDatapath;
  let prog: BpfProgram;
  let stats: BpfMap;

  beforeAll(() => {
    requirePrivileges('xlb-xdp');
    datapath = loadDatapath({ hashSeed: 1, nodeIPv4: '198.51.100.1', nodeIPv6: '2001:db8::100' });
    prog = datapath.xdp;
    stats = datapath.stats;
  });
  afterAll(() => datapath?.close());

  const totals = (): Map<XlbStatName, { packets: bigint; bytes: bigint }> =>
    new Map(readStats(stats).map((r) => [r.name, { packets: r.packets, bytes: r.bytes }]));

  for (const c of cases) {
    it(`${c.name}: passes unchanged, counted as ${c.stat.toLowerCase()}`, () => {
      const before = totals();
      expectXdp(prog, c.frame, { verdict: 'pass' });
      const after = totals();
      for (const [name, v] of after) {
        const was = before.get(name)!;
        const expected = name === c.stat ? 1n : 0n;
        expect(v.packets - was.packets, name).toBe(expected);
        expect(v.bytes - was.bytes, name).toBe(expected * BigInt(c.frame.length));
      }
    });
  }

  it('cannot be handed a frame shorter than an Ethernet header: the kernel refuses the run', () => {
    // No NIC delivers such a frame to XDP either, so the program's own check
    // for it is only a safety net; test_run reports EINVAL before running it.
    expect(() =>
      expectXdp(prog, Buffer.from('0200000000020200', 'hex'), { verdict: 'pass' }),
    ).toThrow(/EINVAL/);
  });

  it('explains a mismatch field by field', () => {
    const frame = packet(E, ipv4({ ...V4, ttl: 64 }), udp({ sport: 1, dport: 2 }));
    const wrong = packet(E, ipv4({ ...V4, ttl: 63 }), udp({ sport: 1, dport: 2 }));
    let err: unknown;
    try {
      expectXdp(prog, frame, { verdict: 'drop', output: wrong });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PacketMismatchError);
    const message = (err as Error).message;
    expect(message).toContain('verdict: expected drop, got pass');
    expect(message).toMatch(/ipv4\.ttl.*63.*64/);
    expect(message).toMatch(/ipv4\.checksum/);
  });
});
