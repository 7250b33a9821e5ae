// tc egress fixtures through bpf_prog_test_run: a pod's reply to a flow the XDP
// program DNATed leaves with VIP:port as its source (exact bytes: the expected
// reply is built again with the VIP's address and port, so byte equality proves
// the checksum helpers' updates); anything without a reverse entry leaves
// untouched. The reverse entries come from the XDP program itself: each case
// first sends the client's packet through it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Datapath } from '../control/datapath/load.js';
import {
  CLIENT4,
  CLIENT6,
  ETH_IN,
  NODE_MAC,
  ROUTER_MAC,
  SERVICES,
  backendById,
  expectPacket,
  expectTc,
  loadFixtureDatapath,
  maglevBackend,
  type FixtureService,
} from './support/datapath-fixture.js';
import {
  eth,
  icmpEcho,
  ipv4,
  ipv6,
  packet,
  payload,
  tcp,
  udp,
  udpChecksum,
  vlan,
  type Layer,
} from './support/packet/index.js';
import { parseIPv4, parseIPv6 } from './support/packet/addr.js';
import { requirePrivileges } from './support/privileged.js';

const S = SERVICES;
const ETH_OUT = eth({ src: NODE_MAC, dst: ROUTER_MAC });

interface Reply {
  /** The pod's address and port, or VIP:port after reverse NAT. */
  src: string;
  sport: number;
}

interface Case {
  name: string;
  svc: FixtureService;
  cport: number;
  /** The reply frame with the given source (pod, or VIP after rewrite). */
  reply: (from: Reply) => Buffer;
  /** Expect no rewrite: the reply's flow has no reverse entry. */
  untouched?: boolean;
  /** Run the client's packet through XDP first (default true). */
  establish?: boolean;
}

const family = (svc: FixtureService): 4 | 6 => (svc.vip.includes(':') ? 6 : 4);
const clientOf = (svc: FixtureService) => (family(svc) === 4 ? CLIENT4 : CLIENT6);

function ipTo(client: string, src: string, extra: { ttl?: number } = {}): Layer {
  return client.includes(':')
    ? ipv6({ src, dst: client, hopLimit: extra.ttl ?? 64 })
    : ipv4({ src, dst: client, ttl: extra.ttl ?? 64, flags: ['DF'], id: 0x3030 });
}

const tcpReply =
  (svc: FixtureService, cport: number, l2: Layer[] = [ETH_OUT]) =>
  (from: Reply) =>
    packet(
      ...l2,
      ipTo(clientOf(svc), from.src),
      tcp({
        sport: from.sport,
        dport: cport,
        seq: 5000,
        ack: 10,
        flags: ['SYN', 'ACK'],
        options: [{ kind: 'mss', value: 1460 }, { kind: 'sackOk' }, { kind: 'wscale', shift: 7 }],
      }),
    );

const udpReply =
  (svc: FixtureService, cport: number, body: Buffer | string = 'answer', checksum?: number) =>
  (from: Reply) =>
    packet(
      ETH_OUT,
      ipTo(clientOf(svc), from.src),
      udp({ sport: from.sport, dport: cport, ...(checksum === undefined ? {} : { checksum }) }),
      payload(body),
    );

/**
 * A 2-byte UDP payload that makes the checksum of the datagram (src, sport ->
 * client, cport) come out as 0, i.e. sent as 0xffff.
 */
function zeroingWord(client: string, src: string, sport: number, cport: number): Buffer {
  const seg = Buffer.alloc(10);
  seg.writeUInt16BE(sport, 0);
  seg.writeUInt16BE(cport, 2);
  seg.writeUInt16BE(10, 4);
  const v6 = client.includes(':');
  const addrs = v6
    ? { src: parseIPv6(src), dst: parseIPv6(client) }
    : { src: parseIPv4(src), dst: parseIPv4(client) };
  const c = udpChecksum(addrs, seg);
  const word = Buffer.alloc(2);
  word.writeUInt16BE(c === 0xffff ? 0 : c);
  return word;
}

const podOf = (svc: FixtureService, cport: number) =>
  backendById(maglevBackend(svc, clientOf(svc), cport));

const cases: Case[] = [
  {
    name: 'IPv4 TCP reply: source becomes VIP:port',
    svc: S.web4,
    cport: 47000,
    reply: tcpReply(S.web4, 47000),
  },
  {
    name: 'IPv4 UDP reply with a checksum',
    svc: S.dns4,
    cport: 47001,
    reply: udpReply(S.dns4, 47001),
  },
  {
    name: 'IPv4 UDP reply without a checksum keeps 0',
    svc: S.dns4,
    cport: 47002,
    reply: udpReply(S.dns4, 47002, 'answer', 0),
  },
  {
    name: 'IPv4 UDP reply whose rewritten checksum comes out 0 is sent as 0xffff',
    svc: S.dns4,
    cport: 47003,
    reply: udpReply(S.dns4, 47003, zeroingWord(CLIENT4, S.dns4.vip, S.dns4.port, 47003)),
  },
  {
    name: 'IPv4 TCP reply with an 802.1Q tag',
    svc: S.web4,
    cport: 47004,
    reply: tcpReply(S.web4, 47004, [ETH_OUT, vlan({ vid: 100 })]),
  },
  {
    name: 'IPv6 TCP reply: source becomes VIP:port',
    svc: S.web6,
    cport: 47000,
    reply: tcpReply(S.web6, 47000),
  },
  { name: 'IPv6 UDP reply', svc: S.dns6, cport: 47001, reply: udpReply(S.dns6, 47001) },
  {
    name: 'IPv6 UDP reply whose rewritten checksum comes out 0 is sent as 0xffff',
    svc: S.dns6,
    cport: 47003,
    reply: udpReply(S.dns6, 47003, zeroingWord(CLIENT6, S.dns6.vip, S.dns6.port, 47003)),
  },
  {
    // After the address and before the port is rewritten the checksum is 0;
    // the port update must not take that for "no checksum".
    name: 'IPv6 UDP reply whose checksum passes through 0 between the address and the port rewrite',
    svc: S.dns6,
    cport: 47005,
    reply: udpReply(
      S.dns6,
      47005,
      zeroingWord(CLIENT6, S.dns6.vip, podOf(S.dns6, 47005).port, 47005),
    ),
  },
  {
    name: 'IPv4 UDP reply whose checksum passes through 0 between the address and the port rewrite',
    svc: S.dns4,
    cport: 47005,
    reply: udpReply(
      S.dns4,
      47005,
      zeroingWord(CLIENT4, S.dns4.vip, podOf(S.dns4, 47005).port, 47005),
    ),
  },
  {
    name: 'IPv4 reply of a flow never balanced (no reverse entry) leaves untouched',
    svc: S.web4,
    cport: 47100,
    reply: tcpReply(S.web4, 47100),
    untouched: true,
    establish: false,
  },
  {
    name: 'IPv6 reply of a flow never balanced (no reverse entry) leaves untouched',
    svc: S.web6,
    cport: 47100,
    reply: tcpReply(S.web6, 47100),
    untouched: true,
    establish: false,
  },
];

describe('datapath fixtures: tc egress reverse NAT (tc test_run)', () => {
  let dp: Datapath;

  beforeAll(() => {
    requirePrivileges('datapath-fixtures-tc');
    dp = loadFixtureDatapath();
  });
  afterAll(() => dp?.close());

  it.each(cases)('$name', (c) => {
    const pod = podOf(c.svc, c.cport);
    const client = clientOf(c.svc);
    if (c.establish ?? true) {
      const to = (dst: string, dport: number) =>
        packet(
          ETH_IN,
          family(c.svc) === 4 ? ipv4({ src: client, dst }) : ipv6({ src: client, dst }),
          c.svc.proto === 'TCP'
            ? tcp({ sport: c.cport, dport, flags: ['SYN'] })
            : udp({ sport: c.cport, dport }),
        );
      expectPacket(dp, to(c.svc.vip, c.svc.port), {
        verdict: 'pass',
        output: to(pod.address, pod.port),
        slot: { outcome: 'LOCAL' },
        events: { CONNTRACK_MISS: 1 },
      });
    }
    const input = c.reply({ src: pod.address, sport: pod.port });
    if (c.untouched) {
      expectTc(dp, dp.tc, input, {});
    } else {
      expectTc(dp, dp.tc, input, {
        output: c.reply({ src: c.svc.vip, sport: c.svc.port }),
        events: { TC_REVERSE_NAT: 1 },
      });
    }
  });

  it('fixture self-check: the checksum edge cases really pass through 0', () => {
    // Rewritten reply of the "comes out 0" cases carries 0xffff.
    for (const [svc, cport, l4] of [
      [S.dns4, 47003, 14 + 20],
      [S.dns6, 47003, 14 + 40],
    ] as const) {
      const c = cases.find((x) => x.svc === svc && x.cport === cport)!;
      expect(c.reply({ src: svc.vip, sport: svc.port }).readUInt16BE(l4 + 6)).toBe(0xffff);
    }
    // Halfway (VIP address, pod port) the "passes through 0" datagrams sum to 0 (0xffff on the wire).
    for (const [svc, l4] of [
      [S.dns4, 14 + 20],
      [S.dns6, 14 + 40],
    ] as const) {
      const c = cases.find((x) => x.svc === svc && x.cport === 47005)!;
      const halfway = c.reply({ src: svc.vip, sport: podOf(svc, 47005).port });
      expect(halfway.readUInt16BE(l4 + 6)).toBe(0xffff);
    }
  });

  it('leaves a pod reply to another client port, ICMP and non-IP frames untouched', () => {
    const pod = podOf(S.web4, 47000);
    expectTc(dp, dp.tc, tcpReply(S.web4, 47999)({ src: pod.address, sport: pod.port }), {});
    expectTc(
      dp,
      dp.tc,
      packet(
        ETH_OUT,
        ipv4({ src: pod.address, dst: CLIENT4 }),
        icmpEcho({ id: 1, seq: 1, reply: true }),
      ),
      {},
    );
    expectTc(
      dp,
      dp.tc,
      packet(eth({ src: NODE_MAC, dst: ROUTER_MAC, type: 0x0806 }), payload(Buffer.alloc(28))),
      {},
    );
  });
});
