// Packet fixtures for tunnelled traffic arriving at this node (IPIP and
// IPv6-in-IPv6 decapsulation, then balancing on this node only) and for ICMP
// errors about balanced flows, rewritten for the local pod that owns the flow.
// Exact output bytes, counter slot and events for every case.
import { afterAll, beforeAll, describe, it } from 'vitest';

import { loadDatapath, type Datapath } from '../control/datapath/load.js';
import {
  BACKENDS,
  CLIENT4,
  CLIENT6,
  ETH_IN,
  MTU,
  NODE4,
  NODE6,
  PEER4,
  PEER6,
  SEED,
  SERVICES,
  VIP4,
  VIP6,
  backendById,
  clientPortFor,
  expectPacket,
  loadFixtureDatapath,
  maglevBackend,
  type FixtureService,
  type PacketExpectation,
} from './support/datapath-fixture.js';
import {
  icmp,
  icmpFragNeeded,
  icmpv6,
  icmpv6PacketTooBig,
  ipv4,
  ipv6,
  hopByHop,
  packet,
  payload,
  quote,
  tcp,
  udp,
  vlan,
  type Layer,
} from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';

const S = SERVICES;
const B = BACKENDS;

interface Case {
  name: string;
  /** Sent first (and checked to be balanced locally): establishes the flow. */
  before?: { input: Buffer; output: Buffer };
  input: Buffer;
  expect: PacketExpectation;
}

// ---- decapsulation ----

/** A client's TCP segment to dst:dport (the VIP, or the pod after DNAT). */
const seg4 = (dst: string, dport: number, cport: number): Layer[] => [
  ipv4({ src: CLIENT4, dst, ttl: 60, flags: ['DF'], id: 0x5151 }),
  tcp({ sport: cport, dport, seq: 9, flags: ['SYN'], options: [{ kind: 'mss', value: 1400 }] }),
];
const seg6 = (dst: string, dport: number, cport: number): Layer[] => [
  ipv6({ src: CLIENT6, dst, hopLimit: 60, flowLabel: 0x54321 }),
  tcp({ sport: cport, dport, seq: 9, flags: ['SYN'], options: [{ kind: 'mss', value: 1400 }] }),
];
/** Outer headers of a tunnel from another node to this one. */
const from4 = (extra: Partial<Parameters<typeof ipv4>[0]> = {}) =>
  ipv4({ src: PEER4.tx, dst: NODE4, flags: ['DF'], ttl: 63, ...extra });
const from6 = () => ipv6({ src: PEER6.tx, dst: NODE6, hopLimit: 63, flowLabel: 0x11111 });

function decapLocal(
  name: string,
  svc: FixtureService,
  cport: number,
  l2: Layer[],
  outer: Layer[],
): Case {
  const v4 = svc.vip === VIP4;
  const pod = backendById(maglevBackend(svc, v4 ? CLIENT4 : CLIENT6, cport));
  const seg = v4 ? seg4 : seg6;
  return {
    name,
    input: packet(...l2, ...outer, ...seg(svc.vip, svc.port, cport)),
    expect: {
      verdict: 'pass',
      output: packet(...l2, ...seg(pod.address, pod.port, cport)),
      slot: { outcome: 'LOCAL' },
      events: { DECAPSULATED: 1, CONNTRACK_MISS: 1 },
    },
  };
}

const decap: Case[] = [
  decapLocal(
    'IPIP to this node, inner packet for a VIP with a local backend: decapsulated and DNATed',
    S.web4,
    45000,
    [ETH_IN],
    [from4()],
  ),
  decapLocal(
    'IPv6-in-IPv6 to this node, inner packet for a VIP with a local backend: decapsulated and DNATed',
    S.web6,
    45000,
    [ETH_IN],
    [from6()],
  ),
  decapLocal(
    'IPIP with outer IPv4 options: options go with the outer header',
    S.web4,
    45001,
    [ETH_IN],
    [from4({ options: [148, 4, 0, 0] })],
  ),
  decapLocal(
    'IPv6-in-IPv6 with an outer hop-by-hop header: removed with the outer header',
    S.web6,
    45001,
    [ETH_IN],
    [from6(), hopByHop()],
  ),
  decapLocal(
    'IPIP with an 802.1Q tag: decapsulated, tag kept',
    S.web4,
    45002,
    [ETH_IN, vlan({ vid: 42 })],
    [from4()],
  ),
  {
    name: 'IPIP whose inner flow balances to a remote backend: DECAP_NOT_LOCAL',
    input: packet(ETH_IN, from4(), ...seg4(VIP4, 81, 45003)),
    expect: {
      verdict: 'drop',
      output: packet(ETH_IN, ...seg4(VIP4, 81, 45003)),
      slot: { drop: 'DECAP_NOT_LOCAL' },
      events: { DECAPSULATED: 1, CONNTRACK_MISS: 1 },
    },
  },
  {
    name: 'IPv6-in-IPv6 whose inner flow balances to a remote backend: DECAP_NOT_LOCAL',
    input: packet(ETH_IN, from6(), ...seg6(VIP6, 81, 45003)),
    expect: {
      verdict: 'drop',
      output: packet(ETH_IN, ...seg6(VIP6, 81, 45003)),
      slot: { drop: 'DECAP_NOT_LOCAL' },
      events: { DECAPSULATED: 1, CONNTRACK_MISS: 1 },
    },
  },
  {
    name: 'IPIP whose inner packet is not for a VIP: DECAP_NOT_VIP',
    input: packet(ETH_IN, from4(), ...seg4('203.0.113.99', 80, 45004)),
    expect: {
      verdict: 'drop',
      output: packet(ETH_IN, ...seg4('203.0.113.99', 80, 45004)),
      slot: { drop: 'DECAP_NOT_VIP' },
      events: { DECAPSULATED: 1 },
    },
  },
  {
    name: 'IPv6-in-IPv6 whose inner packet is not for a VIP: DECAP_NOT_VIP',
    input: packet(ETH_IN, from6(), ...seg6('2001:db8:10::99', 80, 45004)),
    expect: {
      verdict: 'drop',
      output: packet(ETH_IN, ...seg6('2001:db8:10::99', 80, 45004)),
      slot: { drop: 'DECAP_NOT_VIP' },
      events: { DECAPSULATED: 1 },
    },
  },
  {
    name: 'IPIP with a broken inner header (IHL 4): MALFORMED after decapsulation',
    input: packet(
      ETH_IN,
      from4(),
      ipv4({ src: CLIENT4, dst: VIP4, ihl: 4, protocol: 6 }),
      payload('x'),
    ),
    expect: {
      verdict: 'drop',
      output: packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4, ihl: 4, protocol: 6 }), payload('x')),
      slot: { drop: 'MALFORMED' },
      events: { DECAPSULATED: 1 },
    },
  },
  {
    name: 'IPIP fragment to this node: FRAGMENT',
    input: packet(ETH_IN, from4({ flags: ['MF'] }), ...seg4(VIP4, 80, 45005)),
    expect: { verdict: 'drop', slot: { drop: 'FRAGMENT' } },
  },
  {
    name: 'IPIP to another address passes untouched (not for a VIP)',
    input: packet(ETH_IN, from4({ dst: '198.51.100.9' }), ...seg4(VIP4, 80, 45006)),
    expect: { verdict: 'pass', slot: { outcome: 'PASS_NOT_VIP' } },
  },
  {
    name: 'IPv6-in-IPv6 to another address passes untouched (not for a VIP)',
    input: packet(ETH_IN, ipv6({ src: PEER6.tx, dst: '2001:db8:ff::9' }), ...seg6(VIP6, 80, 45006)),
    expect: { verdict: 'pass', slot: { outcome: 'PASS_NOT_VIP' } },
  },
];

// ---- ICMP errors about balanced flows ----

const ROUTER4 = '192.0.2.99';
const ROUTER6 = '2001:db8:c::99';

/** What a backend's reply looked like when it left as VIP:port -> client:cport. */
function reply4(src: string, sport: number, cport: number, udpFlow = false): Layer[] {
  return [
    ipv4({ src, dst: CLIENT4, flags: ['DF'], id: 0x7777, ttl: 61 }),
    udpFlow
      ? udp({ sport, dport: cport })
      : tcp({ sport, dport: cport, seq: 100, ack: 200, flags: ['ACK'] }),
    payload(Buffer.alloc(1300, 0x41)),
  ];
}
function reply6(src: string, sport: number, cport: number, udpFlow = false): Layer[] {
  return [
    ipv6({ src, dst: CLIENT6, hopLimit: 61 }),
    udpFlow
      ? udp({ sport, dport: cport })
      : tcp({ sport, dport: cport, seq: 100, ack: 200, flags: ['ACK'] }),
    payload(Buffer.alloc(1300, 0x42)),
  ];
}

/**
 * The quoted reply as the pod sent it, before tc turned it into VIP:port: the
 * transport checksum stays what the client's side saw (the datapath leaves it:
 * it covers bytes the quote does not hold).
 */
function podQuote(
  family: 4 | 6,
  svc: FixtureService,
  cport: number,
  udpFlow: boolean,
  pod: { address: string; port: number },
): Layer[] {
  const original =
    family === 4 ? reply4(VIP4, svc.port, cport, udpFlow) : reply6(VIP6, svc.port, cport, udpFlow);
  const bytes = packet(...original);
  const l4 = family === 4 ? 20 : 40;
  const checksum = bytes.readUInt16BE(l4 + (udpFlow ? 6 : 16));
  const rebuilt =
    family === 4
      ? reply4(pod.address, pod.port, cport, udpFlow)
      : reply6(pod.address, pod.port, cport, udpFlow);
  const transport = rebuilt[1]!;
  return [rebuilt[0]!, { ...transport, checksum } as Layer, rebuilt[2]!];
}

interface IcmpLocalOptions {
  /** Send a client packet first, so the error hits the connection table. */
  established?: boolean;
  udpFlow?: boolean;
  /** The error arrives in a tunnel from the node that received it. */
  tunnelled?: boolean;
}

function icmpLocal(
  name: string,
  family: 4 | 6,
  svc: FixtureService,
  cport: number,
  { established = false, udpFlow = false, tunnelled = false }: IcmpLocalOptions = {},
): Case {
  const client = family === 4 ? CLIENT4 : CLIENT6;
  const pod = backendById(maglevBackend(svc, client, cport));
  // A router quotes the IP header + 8 bytes (ICMP) or as much as fits in 1280 bytes (ICMPv6).
  const err = (dst: string, quoted: Layer[]): Layer[] =>
    family === 4
      ? [ipv4({ src: ROUTER4, dst, ttl: 250 }), icmpFragNeeded({ mtu: 1280 }), quote(...quoted)]
      : [
          ipv6({ src: ROUTER6, dst, hopLimit: 250 }),
          icmpv6PacketTooBig({ mtu: 1280 }),
          quote(...quoted),
        ];
  const original =
    family === 4
      ? reply4(svc.vip, svc.port, cport, udpFlow)
      : reply6(svc.vip, svc.port, cport, udpFlow);
  const seg = family === 4 ? seg4 : seg6;
  const outer = tunnelled ? [family === 4 ? from4() : from6()] : [];
  const events: PacketExpectation['events'] = established
    ? { CONNTRACK_HIT: 1 }
    : { CONNTRACK_MISS: 1 };
  return {
    name,
    ...(established
      ? {
          before: {
            input: packet(ETH_IN, ...seg(svc.vip, svc.port, cport)),
            output: packet(ETH_IN, ...seg(pod.address, pod.port, cport)),
          },
        }
      : {}),
    input: packet(ETH_IN, ...outer, ...err(svc.vip, original)),
    expect: {
      verdict: 'pass',
      output: packet(ETH_IN, ...err(pod.address, podQuote(family, svc, cport, udpFlow, pod))),
      slot: { outcome: 'ICMP_LOCAL' },
      events: tunnelled ? { ...events, DECAPSULATED: 1 } : events,
    },
  };
}

const unmatched = (name: string, input: Buffer): Case => ({
  name,
  input,
  expect: { verdict: 'drop', slot: { drop: 'ICMP_UNMATCHED' } },
});

const icmp4Err = (quoted: Layer[]) =>
  packet(
    ETH_IN,
    ipv4({ src: ROUTER4, dst: VIP4 }),
    icmpFragNeeded({ mtu: 1280 }),
    quote(...quoted),
  );
const icmp6Err = (quoted: Layer[]) =>
  packet(
    ETH_IN,
    ipv6({ src: ROUTER6, dst: VIP6 }),
    icmpv6PacketTooBig({ mtu: 1280 }),
    quote(...quoted),
  );

const p4 = clientPortFor(S.web4, CLIENT4, B.web4b.id, 46000);
const p6 = clientPortFor(S.web6, CLIENT6, B.web6b.id, 46000);

const icmpErrors: Case[] = [
  icmpLocal(
    'ICMP fragmentation-needed about an established IPv4 TCP flow: rewritten for its local pod',
    4,
    S.web4,
    p4,
    { established: true },
  ),
  icmpLocal(
    'ICMP fragmentation-needed about an IPv4 TCP flow not in the table: Maglev picks the pod',
    4,
    S.web4,
    46100,
  ),
  icmpLocal(
    'ICMP fragmentation-needed about an IPv4 UDP flow: rewritten, quoted UDP checksum kept',
    4,
    S.dns4,
    46101,
    { udpFlow: true },
  ),
  icmpLocal(
    'ICMPv6 packet-too-big about an established IPv6 TCP flow: rewritten for its local pod',
    6,
    S.web6,
    p6,
    { established: true },
  ),
  icmpLocal(
    'ICMPv6 packet-too-big about an IPv6 UDP flow: rewritten for its local pod',
    6,
    S.dns6,
    46101,
    { udpFlow: true },
  ),
  icmpLocal(
    'IPIP-carried ICMP fragmentation-needed about a local flow: decapsulated and rewritten',
    4,
    S.web4,
    46102,
    { tunnelled: true },
  ),
  icmpLocal(
    'IPv6-in-IPv6-carried ICMPv6 packet-too-big about a local flow: decapsulated and rewritten',
    6,
    S.web6,
    46102,
    { tunnelled: true },
  ),
  unmatched(
    'ICMP fragmentation-needed quoting a packet not from the VIP: ICMP_UNMATCHED',
    icmp4Err(reply4('203.0.113.99', 80, 46200)),
  ),
  unmatched(
    'ICMP fragmentation-needed quoting a VIP port no frontend serves: ICMP_UNMATCHED',
    icmp4Err(reply4(VIP4, 9999, 46201)),
  ),
  unmatched(
    'ICMP fragmentation-needed quoting an ICMP packet: ICMP_UNMATCHED',
    icmp4Err([ipv4({ src: VIP4, dst: CLIENT4 }), icmp({ type: 0, rest: 0x00010001 })]),
  ),
  unmatched(
    'ICMP fragmentation-needed with a quote cut short: ICMP_UNMATCHED',
    packet(
      ETH_IN,
      ipv4({ src: ROUTER4, dst: VIP4 }),
      icmpFragNeeded({ mtu: 1280 }),
      payload([0x45, 0, 0, 40]),
    ),
  ),
  unmatched(
    'ICMPv6 packet-too-big quoting a packet not from the VIP: ICMP_UNMATCHED',
    icmp6Err(reply6('2001:db8:10::99', 80, 46200)),
  ),
  unmatched(
    'ICMPv6 packet-too-big quoting a VIP port no frontend serves: ICMP_UNMATCHED',
    icmp6Err(reply6(VIP6, 9999, 46201)),
  ),
  {
    name: 'ICMP fragmentation-needed about a flow of a service without backends: NO_BACKEND',
    input: icmp4Err(reply4(VIP4, 8000, 46202)),
    expect: { verdict: 'drop', slot: { drop: 'NO_BACKEND' }, events: { CONNTRACK_MISS: 1 } },
  },
  {
    name: 'ICMP host-unreachable to a VIP (not an error xlb forwards): UNSUPPORTED_PROTO',
    input: packet(
      ETH_IN,
      ipv4({ src: ROUTER4, dst: VIP4 }),
      icmp({ type: 3, code: 1 }),
      quote(...reply4(VIP4, 80, 46203)),
    ),
    expect: { verdict: 'drop', slot: { drop: 'UNSUPPORTED_PROTO' } },
  },
  {
    name: 'ICMPv6 destination-unreachable to a VIP: UNSUPPORTED_PROTO',
    input: packet(
      ETH_IN,
      ipv6({ src: ROUTER6, dst: VIP6 }),
      icmpv6({ type: 1, code: 3 }),
      quote(...reply6(VIP6, 80, 46203)),
    ),
    expect: { verdict: 'drop', slot: { drop: 'UNSUPPORTED_PROTO' } },
  },
];

describe('datapath fixtures: decapsulation and ICMP errors (XDP test_run)', () => {
  let dp: Datapath;

  beforeAll(() => {
    requirePrivileges('datapath-fixtures-decap-icmp');
    dp = loadFixtureDatapath();
  });
  afterAll(() => dp?.close());

  function runCase(c: Case): void {
    if (c.before) {
      expectPacket(dp, c.before.input, {
        verdict: 'pass',
        output: c.before.output,
        slot: { outcome: 'LOCAL' },
        events: { CONNTRACK_MISS: 1 },
      });
    }
    expectPacket(dp, c.input, c.expect);
  }

  describe('decapsulation', () => {
    it.each(decap)('$name', (c) => runCase(c));
  });
  describe('ICMP errors about balanced flows', () => {
    it.each(icmpErrors)('$name', (c) => runCase(c));
  });

  it('with decapsulation switched off, IPIP and IPv6-in-IPv6 to this node pass untouched', () => {
    using off = loadDatapath({
      hashSeed: SEED,
      mtu: MTU,
      nodeIPv4: NODE4,
      nodeIPv6: NODE6,
      decap: false,
    });
    off.maps.setVip(VIP4, 1);
    off.maps.setVip(VIP6, 1);
    for (const input of [
      packet(ETH_IN, from4(), ...seg4(VIP4, 80, 45100)),
      packet(ETH_IN, from6(), ...seg6(VIP6, 80, 45100)),
    ]) {
      expectPacket(off, input, { verdict: 'pass', slot: { outcome: 'PASS_NOT_VIP' } });
    }
  });
});
