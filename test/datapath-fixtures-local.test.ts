// Packet fixtures through bpf_prog_test_run, for everything that never leaves
// the node: what passes untouched, what is dropped and why, DNAT to local pods
// (exact bytes: the expected packet is built again with the new destination,
// so byte equality proves the incremental checksum updates), and malformed or
// odd input to a VIP. Each case also names the one counter slot it must land in
// and the events it must count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DropName } from '../control/datapath/abi.js';
import type { Datapath } from '../control/datapath/load.js';
import {
  BACKENDS,
  CLIENT4,
  CLIENT6,
  ETH_IN,
  NODE_MAC,
  ROUTER_MAC,
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
  eth,
  fragments,
  frag6,
  destOpts,
  hopByHop,
  icmpEcho,
  icmpv6Echo,
  ipv4,
  ipv6,
  ipv6Ext,
  packet,
  padN,
  payload,
  routerAlert,
  routing,
  tcp,
  udp,
  udpChecksum,
  vlan,
  type Layer,
} from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';

interface Case {
  name: string;
  input: Buffer;
  expect: PacketExpectation;
  /** For balanced packets: the flow that must now be in the tables. */
  balanced?: {
    svc: FixtureService;
    client: string;
    clientPort: number;
    backend: number;
  };
}

const B = BACKENDS;
const S = SERVICES;
const BODY = payload('GET / HTTP/1.1\r\nHost: example\r\n\r\n');

/** A TCP segment to VIP:port or, with the same fields, to its pod. */
function tcpLayers(sport: number, dport: number): Layer[] {
  return [
    tcp({
      sport,
      dport,
      seq: 0x01020304,
      ack: 0x0a0b0c0d,
      flags: ['ACK', 'PSH'],
      options: [{ kind: 'timestamp', value: 1000, echo: 2000 }],
    }),
    BODY,
  ];
}

/**
 * The packet to the service, and the one the datapath must leave: the same
 * builder call with the pod's address and port (all checksums computed anew).
 */
function dnatPair(
  svc: FixtureService,
  client: string,
  clientPort: number,
  build: (dst: string, dport: number) => Buffer,
): { input: Buffer; output: Buffer; backend: number } {
  const backend = maglevBackend(svc, client, clientPort);
  const pod = backendById(backend);
  return { input: build(svc.vip, svc.port), output: build(pod.address, pod.port), backend };
}

function localCase(
  name: string,
  svc: FixtureService,
  client: string,
  clientPort: number,
  build: (dst: string, dport: number) => Buffer,
  events: PacketExpectation['events'] = {},
): Case {
  const { input, output, backend } = dnatPair(svc, client, clientPort, build);
  return {
    name,
    input,
    expect: {
      verdict: 'pass',
      output,
      slot: { outcome: 'LOCAL' },
      events: { CONNTRACK_MISS: 1, ...events },
    },
    balanced: { svc, client, clientPort, backend },
  };
}

const drop = (
  name: string,
  input: Buffer,
  reason: { drop: DropName },
  events?: PacketExpectation['events'],
): Case => ({
  name,
  input,
  expect: { verdict: 'drop', slot: reason, ...(events ? { events } : {}) },
});

const passUntouched = (
  name: string,
  input: Buffer,
  outcome: 'PASS_NOT_IP' | 'PASS_NOT_VIP' | 'PASS_UNPARSED',
): Case => ({ name, input, expect: { verdict: 'pass', slot: { outcome } } });

// Client ports chosen so both pods of the two-pod services get traffic.
const p4a = clientPortFor(S.web4, CLIENT4, B.web4a.id, 41000);
const p4b = clientPortFor(S.web4, CLIENT4, B.web4b.id, 42000);
const p6a = clientPortFor(S.web6, CLIENT6, B.web6a.id, 41000);
const p6b = clientPortFor(S.web6, CLIENT6, B.web6b.id, 42000);

const arp = packet(
  eth({ src: ROUTER_MAC, dst: 'ff:ff:ff:ff:ff:ff', type: 0x0806 }),
  payload([
    0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 203, 0, 113, 10,
  ]),
);

/** A UDP payload word that makes the DNATed datagram's checksum come out as 0 (sent as 0xffff). */
function zeroSumWord(src: string, dst: string, sport: number, dport: number): number {
  const seg = Buffer.alloc(10);
  seg.writeUInt16BE(sport, 0);
  seg.writeUInt16BE(dport, 2);
  seg.writeUInt16BE(10, 4);
  const ip = (a: string) => Buffer.from(a.split('.').map(Number));
  const c = udpChecksum({ src: ip(src), dst: ip(dst) }, seg);
  // The checksum with a zero word is ~sum; adding ~sum as data makes the sum 0xffff.
  return c === 0xffff ? 0 : c;
}

const classify: Case[] = [
  passUntouched('ARP passes untouched (PASS_NOT_IP)', arp, 'PASS_NOT_IP'),
  passUntouched(
    'IPv4 to an address that is no VIP passes untouched',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: '203.0.113.99' }), ...tcpLayers(40000, 80)),
    'PASS_NOT_VIP',
  ),
  passUntouched(
    'IPv6 to an address that is no VIP passes untouched',
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: '2001:db8:10::99' }), ...tcpLayers(40000, 80)),
    'PASS_NOT_VIP',
  ),
  passUntouched(
    'IPv4 header cut short passes unparsed',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4 }), ...tcpLayers(40000, 80)).subarray(0, 14 + 16),
    'PASS_UNPARSED',
  ),
  passUntouched(
    'IPv6 header cut short passes unparsed',
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: VIP6 }), ...tcpLayers(40000, 80)).subarray(0, 14 + 30),
    'PASS_UNPARSED',
  ),
  passUntouched(
    'IPv6 ethertype carrying an IPv4 header passes unparsed',
    packet(
      eth({ src: ROUTER_MAC, dst: NODE_MAC, type: 0x86dd }),
      ipv4({ src: CLIENT4, dst: VIP4 }),
      ...tcpLayers(40000, 80),
    ),
    'PASS_UNPARSED',
  ),
  drop(
    'IPv4 VIP on a port no frontend serves: NO_FRONTEND',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4 }), ...tcpLayers(40000, 8443)),
    { drop: 'NO_FRONTEND' },
  ),
  drop(
    'IPv6 VIP on a port no frontend serves: NO_FRONTEND',
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: VIP6 }), ...tcpLayers(40000, 8443)),
    { drop: 'NO_FRONTEND' },
  ),
  drop(
    'IPv4 UDP to a TCP-only frontend: NO_FRONTEND',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4 }), udp({ sport: 40000, dport: 80 }), BODY),
    { drop: 'NO_FRONTEND' },
  ),
  drop(
    'IPv6 UDP to a TCP-only frontend: NO_FRONTEND',
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: VIP6 }), udp({ sport: 40000, dport: 80 }), BODY),
    { drop: 'NO_FRONTEND' },
  ),
  drop(
    'ICMP echo to an IPv4 VIP: UNSUPPORTED_PROTO',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4 }), icmpEcho({ id: 7, seq: 1 }), payload('ping')),
    { drop: 'UNSUPPORTED_PROTO' },
  ),
  drop(
    'ICMPv6 echo to an IPv6 VIP: UNSUPPORTED_PROTO',
    packet(
      ETH_IN,
      ipv6({ src: CLIENT6, dst: VIP6 }),
      icmpv6Echo({ id: 7, seq: 1 }),
      payload('ping'),
    ),
    { drop: 'UNSUPPORTED_PROTO' },
  ),
  drop(
    'SCTP to an IPv4 VIP: UNSUPPORTED_PROTO',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4, protocol: 132 }), payload(Buffer.alloc(28))),
    { drop: 'UNSUPPORTED_PROTO' },
  ),
  drop(
    'GRE to an IPv6 VIP: UNSUPPORTED_PROTO',
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: VIP6, nextHeader: 47 }), payload(Buffer.alloc(24))),
    { drop: 'UNSUPPORTED_PROTO' },
  ),
  drop(
    'ICMP (v4) inside IPv6 to a VIP: UNSUPPORTED_PROTO',
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: VIP6, nextHeader: 1 }), payload(Buffer.alloc(16))),
    { drop: 'UNSUPPORTED_PROTO' },
  ),
];

const sourceRanges: Case[] = [
  localCase(
    'IPv4 source inside loadBalancerSourceRanges is balanced',
    S.ranges4,
    CLIENT4,
    40001,
    (d, p) => packet(ETH_IN, ipv4({ src: CLIENT4, dst: d }), ...tcpLayers(40001, p)),
  ),
  localCase(
    'IPv4 source inside the second range is balanced',
    S.ranges4,
    '198.51.100.70',
    40002,
    (d, p) => packet(ETH_IN, ipv4({ src: '198.51.100.70', dst: d }), ...tcpLayers(40002, p)),
  ),
  drop(
    'IPv4 source outside loadBalancerSourceRanges: SOURCE_RANGE',
    packet(ETH_IN, ipv4({ src: '192.0.2.200', dst: VIP4 }), ...tcpLayers(40003, 443)),
    { drop: 'SOURCE_RANGE' },
  ),
  localCase(
    'IPv6 source inside loadBalancerSourceRanges is balanced',
    S.ranges6,
    CLIENT6,
    40001,
    (d, p) => packet(ETH_IN, ipv6({ src: CLIENT6, dst: d }), ...tcpLayers(40001, p)),
  ),
  drop(
    'IPv6 source outside loadBalancerSourceRanges: SOURCE_RANGE',
    packet(ETH_IN, ipv6({ src: '2001:db8:d::10', dst: VIP6 }), ...tcpLayers(40003, 443)),
    { drop: 'SOURCE_RANGE' },
  ),
];

const zeroWord = zeroSumWord(CLIENT4, B.dns4.address, 40020, B.dns4.port);

const dnat: Case[] = [
  localCase('IPv4 TCP DNAT to the first local pod', S.web4, CLIENT4, p4a, (d, p) =>
    packet(
      ETH_IN,
      ipv4({ src: CLIENT4, dst: d, id: 0x4321, flags: ['DF'], tos: 0x10 }),
      ...tcpLayers(p4a, p),
    ),
  ),
  localCase('IPv4 TCP DNAT to the second local pod', S.web4, CLIENT4, p4b, (d, p) =>
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: d, flags: ['DF'] }), ...tcpLayers(p4b, p)),
  ),
  localCase('IPv4 UDP DNAT with a checksum', S.dns4, CLIENT4, 40010, (d, p) =>
    packet(
      ETH_IN,
      ipv4({ src: CLIENT4, dst: d }),
      udp({ sport: 40010, dport: p }),
      payload('query'),
    ),
  ),
  localCase('IPv4 UDP DNAT without a checksum keeps 0', S.dns4, CLIENT4, 40011, (d, p) =>
    packet(
      ETH_IN,
      ipv4({ src: CLIENT4, dst: d }),
      udp({ sport: 40011, dport: p, checksum: 0 }),
      payload('query'),
    ),
  ),
  localCase(
    'IPv4 UDP DNAT whose checksum comes out 0 is sent as 0xffff',
    S.dns4,
    CLIENT4,
    40020,
    (d, p) =>
      packet(
        ETH_IN,
        ipv4({ src: CLIENT4, dst: d }),
        udp({ sport: 40020, dport: p }),
        payload([zeroWord >> 8, zeroWord & 0xff]),
      ),
  ),
  localCase('IPv6 TCP DNAT to the first local pod', S.web6, CLIENT6, p6a, (d, p) =>
    packet(
      ETH_IN,
      ipv6({ src: CLIENT6, dst: d, trafficClass: 0x28, flowLabel: 0x12345 }),
      ...tcpLayers(p6a, p),
    ),
  ),
  localCase('IPv6 TCP DNAT to the second local pod', S.web6, CLIENT6, p6b, (d, p) =>
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: d }), ...tcpLayers(p6b, p)),
  ),
  localCase('IPv6 UDP DNAT', S.dns6, CLIENT6, 40010, (d, p) =>
    packet(
      ETH_IN,
      ipv6({ src: CLIENT6, dst: d }),
      udp({ sport: 40010, dport: p }),
      payload('query'),
    ),
  ),
  localCase('IPv4 TCP with an 802.1Q tag: DNAT, tag kept', S.web4, CLIENT4, 40030, (d, p) =>
    packet(
      ETH_IN,
      vlan({ vid: 100, pcp: 3 }),
      ipv4({ src: CLIENT4, dst: d }),
      ...tcpLayers(40030, p),
    ),
  ),
  localCase('IPv6 UDP with QinQ tags: DNAT, both tags kept', S.dns6, CLIENT6, 40031, (d, p) =>
    packet(
      ETH_IN,
      vlan({ vid: 200, tpid: 0x88a8 }),
      vlan({ vid: 100 }),
      ipv6({ src: CLIENT6, dst: d }),
      udp({ sport: 40031, dport: p }),
      payload('query'),
    ),
  ),
  localCase(
    'IPv4 with options (router alert) is balanced, IPV4_OPTIONS counted',
    S.web4,
    CLIENT4,
    40040,
    (d, p) =>
      packet(
        ETH_IN,
        ipv4({ src: CLIENT4, dst: d, options: [148, 4, 0, 0] }),
        ...tcpLayers(40040, p),
      ),
    { IPV4_OPTIONS: 1 },
  ),
  localCase(
    'IPv6 with a hop-by-hop header is balanced through it',
    S.web6,
    CLIENT6,
    40041,
    (d, p) =>
      packet(
        ETH_IN,
        ipv6({ src: CLIENT6, dst: d }),
        hopByHop({ options: [routerAlert(0)] }),
        ...tcpLayers(40041, p),
      ),
  ),
  localCase(
    'IPv6 with hop-by-hop and destination options headers is balanced',
    S.dns6,
    CLIENT6,
    40042,
    (d, p) =>
      packet(
        ETH_IN,
        ipv6({ src: CLIENT6, dst: d }),
        hopByHop({ options: [padN(4)] }),
        destOpts({ options: [padN(12)] }),
        udp({ sport: 40042, dport: p }),
        payload('query'),
      ),
  ),
  localCase(
    'IPv6 routing header with no segments left is balanced',
    S.web6,
    CLIENT6,
    40043,
    (d, p) =>
      packet(
        ETH_IN,
        ipv6({ src: CLIENT6, dst: d }),
        routing({ routingType: 4, addresses: ['2001:db8:10::77'], segmentsLeft: 0 }),
        ...tcpLayers(40043, p),
      ),
  ),
  localCase('IPv4 TTL 2 is balanced', S.web4, CLIENT4, 40044, (d, p) =>
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: d, ttl: 2 }), ...tcpLayers(40044, p)),
  ),
  localCase('IPv6 hop limit 2 is balanced', S.web6, CLIENT6, 40044, (d, p) =>
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: d, hopLimit: 2 }), ...tcpLayers(40044, p)),
  ),
];

const [firstFrag4, laterFrag4] = fragments(
  16,
  ETH_IN,
  ipv4({ src: CLIENT4, dst: VIP4, id: 77 }),
  ...tcpLayers(40050, 80),
);

const malformed: Case[] = [
  drop('IPv4 first fragment to a VIP: FRAGMENT', firstFrag4!, { drop: 'FRAGMENT' }),
  drop('IPv4 later fragment to a VIP: FRAGMENT', laterFrag4!, { drop: 'FRAGMENT' }),
  drop(
    'IPv6 fragment header to a VIP: FRAGMENT',
    packet(
      ETH_IN,
      ipv6({ src: CLIENT6, dst: VIP6 }),
      frag6({ id: 9, more: true }),
      ...tcpLayers(40050, 80),
    ),
    { drop: 'FRAGMENT' },
  ),
  drop(
    'IPv6 routing header with segments left: IPV6_EXTENSION',
    packet(
      ETH_IN,
      ipv6({ src: CLIENT6, dst: VIP6 }),
      routing({ routingType: 4, addresses: ['2001:db8:10::77', VIP6] }),
      ...tcpLayers(40051, 80),
    ),
    { drop: 'IPV6_EXTENSION' },
  ),
  drop(
    'IPv6 unknown extension header 253: IPV6_EXTENSION',
    packet(
      ETH_IN,
      ipv6({ src: CLIENT6, dst: VIP6 }),
      ipv6Ext(253, Buffer.alloc(6)),
      ...tcpLayers(40052, 80),
    ),
    { drop: 'IPV6_EXTENSION' },
  ),
  drop(
    'IPv4 TTL 1: TTL_EXPIRED',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4, ttl: 1 }), ...tcpLayers(40053, 80)),
    { drop: 'TTL_EXPIRED' },
  ),
  drop(
    'IPv6 hop limit 1: TTL_EXPIRED',
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: VIP6, hopLimit: 1 }), ...tcpLayers(40053, 80)),
    { drop: 'TTL_EXPIRED' },
  ),
  drop(
    'IPv4 TCP header cut short: MALFORMED',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4, protocol: 6 }), payload(Buffer.alloc(12, 1))),
    { drop: 'MALFORMED' },
  ),
  drop(
    'IPv6 TCP header cut short: MALFORMED',
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: VIP6, nextHeader: 6 }), payload(Buffer.alloc(12, 1))),
    { drop: 'MALFORMED' },
  ),
  drop(
    'IPv4 UDP header cut short: MALFORMED',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4, protocol: 17 }), payload(Buffer.alloc(6, 1))),
    { drop: 'MALFORMED' },
  ),
  drop(
    'ICMP to a VIP shorter than its header: MALFORMED',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4, protocol: 1 }), payload([3, 4, 0, 0])),
    { drop: 'MALFORMED' },
  ),
  passUntouched(
    'IPv4 total length beyond the frame passes unparsed',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4, totalLength: 400 }), ...tcpLayers(40054, 80)),
    'PASS_UNPARSED',
  ),
  passUntouched(
    'IPv4 IHL below 5 passes unparsed',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4, ihl: 4 }), ...tcpLayers(40055, 80)),
    'PASS_UNPARSED',
  ),
  passUntouched(
    'IPv6 payload length beyond the frame passes unparsed',
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: VIP6, payloadLength: 400 }), ...tcpLayers(40056, 80)),
    'PASS_UNPARSED',
  ),
];

const noBackend: Case[] = [
  drop(
    'IPv4 service without a Maglev table: NO_BACKEND',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4 }), ...tcpLayers(40060, 8000)),
    { drop: 'NO_BACKEND' },
    { CONNTRACK_MISS: 1 },
  ),
  drop(
    'IPv6 service without a Maglev table: NO_BACKEND',
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: VIP6 }), ...tcpLayers(40060, 8000)),
    { drop: 'NO_BACKEND' },
    { CONNTRACK_MISS: 1 },
  ),
  drop(
    'IPv4 service whose table holds only a gone backend: NO_BACKEND',
    packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4 }), ...tcpLayers(40061, 8001)),
    { drop: 'NO_BACKEND' },
    { CONNTRACK_MISS: 1 },
  ),
  drop(
    'IPv6 service whose table holds only a gone backend: NO_BACKEND',
    packet(ETH_IN, ipv6({ src: CLIENT6, dst: VIP6 }), ...tcpLayers(40061, 8001)),
    { drop: 'NO_BACKEND' },
    { CONNTRACK_MISS: 1 },
  ),
];

describe('datapath fixtures: classification, DNAT and malformed input (XDP test_run)', () => {
  let dp: Datapath;

  beforeAll(() => {
    requirePrivileges('datapath-fixtures-local');
    dp = loadFixtureDatapath();
  });
  afterAll(() => dp?.close());

  function runCase(c: Case): void {
    const svcBefore = c.balanced && dp.maps.serviceCounters(c.balanced.svc.id);
    const beBefore = c.balanced && dp.maps.backendCounters(c.balanced.backend);
    expectPacket(dp, c.input, c.expect);
    if (!c.balanced) return;
    const { svc, client, clientPort, backend } = c.balanced;
    const pod = backendById(backend);
    const proto = svc.proto;
    // Per-service and per-backend counters: one packet of this frame, one new flow.
    const svcAfter = dp.maps.serviceCounters(svc.id);
    const beAfter = dp.maps.backendCounters(backend);
    expect({
      packets: svcAfter.packets - svcBefore!.packets,
      bytes: svcAfter.bytes - svcBefore!.bytes,
      newFlows: svcAfter.newFlows - svcBefore!.newFlows,
    }).toEqual({ packets: 1n, bytes: BigInt(c.input.length), newFlows: 1n });
    expect({
      packets: beAfter.packets - beBefore!.packets,
      newFlows: beAfter.newFlows - beBefore!.newFlows,
    }).toEqual({ packets: 1n, newFlows: 1n });
    // The connection table pins the flow; the reverse entry lets tc turn replies back.
    const flow = [...dp.maps.flows()].find(
      (f) => f.client === client && f.clientPort === clientPort && f.port === svc.port,
    );
    expect(flow).toMatchObject({ vip: svc.vip, proto, backendId: backend, serviceId: svc.id });
    const reverse = [...dp.maps.reverseEntries()].filter(
      (r) => r.client === client && r.clientPort === clientPort && r.pod === pod.address,
    );
    expect(reverse).toEqual([
      {
        pod: pod.address,
        podPort: pod.port,
        client,
        clientPort,
        vip: svc.vip,
        port: svc.port,
      },
    ]);
  }

  it('fixture self-check: the zero-sum UDP case really comes out as 0xffff after DNAT', () => {
    const c = dnat.find((x) => x.name.includes('comes out 0'))!;
    expect(c.expect.output!.readUInt16BE(14 + 20 + 6)).toBe(0xffff);
    expect(c.input.readUInt16BE(14 + 20 + 6)).not.toBe(0xffff);
  });

  describe('not for the load balancer, and refused', () => {
    it.each(classify)('$name', (c) => runCase(c));
  });
  describe('loadBalancerSourceRanges', () => {
    it.each(sourceRanges)('$name', (c) => runCase(c));
  });
  describe('DNAT to a pod on this node', () => {
    it.each(dnat)('$name', (c) => runCase(c));
  });
  describe('malformed and odd input to a VIP', () => {
    it.each(malformed)('$name', (c) => runCase(c));
  });
  describe('no backend', () => {
    it.each(noBackend)('$name', (c) => runCase(c));
  });
});
