// Packet fixtures for backends on other nodes, through bpf_prog_test_run inside
// a network namespace whose FIB and neighbours are known (support/node-network):
// IPIP and IPv6-in-IPv6 with exact outer headers and MACs from the FIB, XDP_TX,
// XDP_REDIRECT, unresolved next hop, no route; packets too big to encapsulate
// (ICMP answers, exact bytes); ICMP errors about a remote backend's flow.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadDatapath, type Datapath } from '../control/datapath/load.js';
import {
  BACKENDS,
  CLIENT4,
  CLIENT6,
  ETH_IN,
  MTU,
  NODE4,
  NODE6,
  NODE_MAC,
  PEER4,
  PEER6,
  ROUTER_MAC,
  SEED,
  SERVICES,
  VIP4,
  VIP6,
  expectPacket,
  flowLabel,
  installBackend,
  installService,
  loadFixtureDatapath,
  type FixtureService,
  type PacketExpectation,
} from './support/datapath-fixture.js';
import { LINKS, NodeNetwork } from './support/node-network.js';
import {
  eth,
  icmpFragNeeded,
  icmpv6PacketTooBig,
  ipv4,
  ipv6,
  packet,
  payload,
  quote,
  quoteFirst,
  tcp,
  udp,
  vlan,
  type EthLayer,
  type Layer,
} from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';

const S = SERVICES;
const B = BACKENDS;

/** Where the frame arrived: the node's eth0 (the uplink) unless said otherwise. */
type Ingress = 'eth0' | 'eth1';

interface Case {
  name: string;
  input: Buffer;
  expect: PacketExpectation;
  ingress?: Ingress;
  /** Balanced packets: the service and backend whose counters must move. */
  counted?: { svc: FixtureService; backend: number; newFlow: boolean };
  /** Empty the flow cache first, so an established flow takes the full path. */
  uncached?: boolean;
}

const ETH_TX: EthLayer = eth({ src: LINKS.eth0.mac, dst: LINKS.eth0.gwMac });
const ETH_REDIRECT: EthLayer = eth({ src: LINKS.eth1.mac, dst: LINKS.eth1.gwMac });
const ETH_BACK: EthLayer = eth({ src: NODE_MAC, dst: ROUTER_MAC });

/** The outer IPv4 header of a tunnel to `node`: DF, TTL 64, id 0, tos of the inner packet. */
const outer4 = (node: string, tos = 0): Layer =>
  ipv4({ src: NODE4, dst: node, tos, id: 0, flags: ['DF'], ttl: 64 });

/** The outer IPv6 header: traffic class of the inner packet, flow label = flow hash. */
const outer6 = (node: string, trafficClass: number, label: number): Layer =>
  ipv6({ src: NODE6, dst: node, trafficClass, flowLabel: label, hopLimit: 64 });

function tcp4(sport: number, dport: number, opts: { tos?: number; df?: boolean; body?: number }) {
  return [
    ipv4({
      src: CLIENT4,
      dst: VIP4,
      tos: opts.tos ?? 0,
      id: 0x2222,
      ttl: 57,
      flags: opts.df === false ? [] : ['DF'],
    }),
    tcp({ sport, dport, seq: 77, ack: 88, flags: ['ACK', 'PSH'] }),
    payload(Buffer.alloc(opts.body ?? 32, 0x61)),
  ] satisfies Layer[];
}

function tcp6(sport: number, dport: number, opts: { tc?: number; body?: number }) {
  return [
    ipv6({ src: CLIENT6, dst: VIP6, trafficClass: opts.tc ?? 0, flowLabel: 0xabcde, hopLimit: 57 }),
    tcp({ sport, dport, seq: 77, ack: 88, flags: ['ACK', 'PSH'] }),
    payload(Buffer.alloc(opts.body ?? 32, 0x62)),
  ] satisfies Layer[];
}

function encap(
  name: string,
  svc: FixtureService,
  inner: Layer[],
  l2In: Layer[],
  out: { eth: EthLayer; outer: Layer },
  verdict: PacketExpectation['verdict'],
  slot: PacketExpectation['slot'],
  sel: {
    backend: number;
    newFlow?: boolean;
    uncached?: boolean;
    events?: PacketExpectation['events'];
  },
): Case {
  const newFlow = sel.newFlow ?? true;
  const hit = sel.uncached ? { CONNTRACK_HIT: 1 } : { FLOW_CACHE_HIT: 1 };
  return {
    name,
    input: packet(...l2In, ...inner),
    expect: {
      verdict,
      output: packet(out.eth, out.outer, ...inner),
      slot,
      events: sel.events ?? (newFlow ? { CONNTRACK_MISS: 1 } : hit),
    },
    counted: { svc, backend: sel.backend, newFlow },
    ...(sel.uncached ? { uncached: true } : {}),
  };
}

const TX = { outcome: 'ENCAP_TX' } as const;
const REDIRECT = { outcome: 'ENCAP_REDIRECT' } as const;
const KERNEL = { outcome: 'ENCAP_KERNEL' } as const;
const FIB = { drop: 'FIB' } as const;
const label6 = (svc: FixtureService, cport: number) => flowLabel(svc, CLIENT6, cport);

const encapsulation: Case[] = [
  encap(
    'IPv4 TCP to a remote backend: IPIP, back out the ingress (XDP_TX)',
    S.tx4,
    tcp4(40000, 81, { tos: 0xb8 }),
    [ETH_IN],
    { eth: ETH_TX, outer: outer4(PEER4.tx, 0xb8) },
    'tx',
    TX,
    { backend: B.tx4.id },
  ),
  encap(
    'IPv4 TCP, second packet of the flow: same tunnel, from the flow cache with its next hop',
    S.tx4,
    tcp4(40000, 81, { tos: 0xb8 }),
    [ETH_IN],
    { eth: ETH_TX, outer: outer4(PEER4.tx, 0xb8) },
    'tx',
    TX,
    { backend: B.tx4.id, newFlow: false },
  ),
  encap(
    'IPv4 TCP, third packet with the flow cache emptied: same tunnel (conntrack hit)',
    S.tx4,
    tcp4(40000, 81, { tos: 0xb8 }),
    [ETH_IN],
    { eth: ETH_TX, outer: outer4(PEER4.tx, 0xb8) },
    'tx',
    TX,
    { backend: B.tx4.id, newFlow: false, uncached: true },
  ),
  encap(
    'IPv4 UDP to a remote backend: IPIP (XDP_TX)',
    S.udpTx4,
    [
      ipv4({ src: CLIENT4, dst: VIP4 }),
      udp({ sport: 40001, dport: 54, checksum: 0 }),
      payload('dns query'),
    ],
    [ETH_IN],
    { eth: ETH_TX, outer: outer4(PEER4.tx) },
    'tx',
    TX,
    { backend: B.tx4.id },
  ),
  encap(
    'IPv6 TCP to a remote backend: IPv6-in-IPv6, traffic class copied, flow label = flow hash (XDP_TX)',
    S.tx6,
    tcp6(40000, 81, { tc: 0x2e }),
    [ETH_IN],
    { eth: ETH_TX, outer: outer6(PEER6.tx, 0x2e, label6(S.tx6, 40000)) },
    'tx',
    TX,
    { backend: B.tx6.id },
  ),
  encap(
    'IPv6 TCP, second packet from the flow cache: the same flow label and next hop',
    S.tx6,
    tcp6(40000, 81, { tc: 0x2e }),
    [ETH_IN],
    { eth: ETH_TX, outer: outer6(PEER6.tx, 0x2e, label6(S.tx6, 40000)) },
    'tx',
    TX,
    { backend: B.tx6.id, newFlow: false },
  ),
  encap(
    'IPv6 TCP with session affinity: flow label hashes the client only',
    S.affinityTx6,
    tcp6(40002, 85, {}),
    [ETH_IN],
    { eth: ETH_TX, outer: outer6(PEER6.tx, 0, label6(S.affinityTx6, 1)) },
    'tx',
    TX,
    { backend: B.tx6.id },
  ),
  encap(
    'IPv4 TCP whose backend node is routed out another interface: XDP_REDIRECT',
    S.redirect4,
    tcp4(40003, 82, {}),
    [ETH_IN],
    { eth: ETH_REDIRECT, outer: outer4(PEER4.redirect) },
    'redirect',
    REDIRECT,
    { backend: B.redirect4.id },
  ),
  encap(
    'IPv6 TCP whose backend node is routed out another interface: XDP_REDIRECT',
    S.redirect6,
    tcp6(40003, 82, {}),
    [ETH_IN],
    { eth: ETH_REDIRECT, outer: outer6(PEER6.redirect, 0, label6(S.redirect6, 40003)) },
    'redirect',
    REDIRECT,
    { backend: B.redirect6.id },
  ),
  {
    ...encap(
      'IPv4 TCP arriving on eth1 with its backend node behind eth0: XDP_REDIRECT',
      S.tx4,
      tcp4(40004, 81, {}),
      [ETH_IN],
      { eth: ETH_TX, outer: outer4(PEER4.tx) },
      'redirect',
      REDIRECT,
      { backend: B.tx4.id },
    ),
    ingress: 'eth1',
  },
  encap(
    'IPv4 next hop without a neighbour entry: encapsulated, left to the kernel (XDP_PASS)',
    S.noNeigh4,
    tcp4(40005, 83, {}),
    [ETH_IN],
    { eth: ETH_IN, outer: outer4(PEER4.noNeigh) },
    'pass',
    KERNEL,
    { backend: B.noNeigh4.id },
  ),
  encap(
    'IPv6 next hop without a neighbour entry: encapsulated, left to the kernel (XDP_PASS)',
    S.noNeigh6,
    tcp6(40005, 83, {}),
    [ETH_IN],
    { eth: ETH_IN, outer: outer6(PEER6.noNeigh, 0, label6(S.noNeigh6, 40005)) },
    'pass',
    KERNEL,
    { backend: B.noNeigh6.id },
  ),
  encap(
    'IPv4 backend node without a route: FIB drop',
    S.noRoute4,
    tcp4(40006, 84, {}),
    [ETH_IN],
    { eth: ETH_IN, outer: outer4(PEER4.noRoute) },
    'drop',
    FIB,
    { backend: B.noRoute4.id },
  ),
  encap(
    'IPv6 backend node without a route: FIB drop',
    S.noRoute6,
    tcp6(40006, 84, {}),
    [ETH_IN],
    { eth: ETH_IN, outer: outer6(PEER6.noRoute, 0, label6(S.noRoute6, 40006)) },
    'drop',
    FIB,
    { backend: B.noRoute6.id },
  ),
  encap(
    'IPv4 with an 802.1Q tag: encapsulated frame leaves untagged',
    S.tx4,
    tcp4(40007, 81, { tos: 0x04 }),
    [ETH_IN, vlan({ vid: 100, pcp: 5 })],
    { eth: ETH_TX, outer: outer4(PEER4.tx, 0x04) },
    'tx',
    TX,
    { backend: B.tx4.id },
  ),
  encap(
    'IPv6 with QinQ tags: encapsulated frame leaves untagged',
    S.tx6,
    tcp6(40007, 81, {}),
    [ETH_IN, vlan({ vid: 300, tpid: 0x88a8 }), vlan({ vid: 100 })],
    { eth: ETH_TX, outer: outer6(PEER6.tx, 0, label6(S.tx6, 40007)) },
    'tx',
    TX,
    { backend: B.tx6.id },
  ),
];

/** The same case with `bytes` of Ethernet padding / trailer after the IP packet. */
function withTrailer(c: Case, name: string, bytes: number): Case {
  return { ...c, name, input: Buffer.concat([c.input, Buffer.alloc(bytes, 0xee)]) };
}

const bareAck4 = [
  ipv4({ src: CLIENT4, dst: VIP4, flags: ['DF'] }),
  tcp({ sport: 40008, dport: 81, seq: 1, ack: 1, flags: ['ACK'] }),
];
encapsulation.push(
  withTrailer(
    encap('', S.tx4, bareAck4, [ETH_IN], { eth: ETH_TX, outer: outer4(PEER4.tx) }, 'tx', TX, {
      backend: B.tx4.id,
    }),
    'IPv4 bare ACK padded to the 60-byte Ethernet minimum: the padding stays out of the tunnel',
    6,
  ),
  withTrailer(
    encap(
      '',
      S.tx6,
      tcp6(40008, 81, { body: 0 }),
      [ETH_IN],
      { eth: ETH_TX, outer: outer6(PEER6.tx, 0, label6(S.tx6, 40008)) },
      'tx',
      TX,
      { backend: B.tx6.id },
    ),
    'IPv6 frame with an Ethernet trailer: the trailer stays out of the tunnel',
    8,
  ),
);

/** Payload sizes giving an IP packet of `total` bytes (TCP header without options). */
const body4 = (total: number) => total - 20 - 20;
const body6 = (total: number) => total - 40 - 20;

function tooBigCase(
  name: string,
  svc: FixtureService,
  l2In: Layer[],
  inner: Layer[],
  reply: Buffer | undefined,
  slot: PacketExpectation['slot'],
  verdict: PacketExpectation['verdict'],
  backend: number,
): Case {
  return {
    name,
    input: packet(...l2In, ...inner),
    expect: {
      verdict,
      ...(reply ? { output: reply } : {}),
      slot,
      events: { CONNTRACK_MISS: 1 },
    },
    counted: { svc, backend, newFlow: true },
  };
}

/** The bytes of the IP packet inside a list of layers (no L2). */
const ipBytes = (inner: Layer[]) => packet(...inner);

const big4 = tcp4(40010, 81, { body: body4(MTU - 20 + 1) });
const big4Tagged = tcp4(40011, 81, { body: body4(MTU - 20 + 1) });
const big4NoDf = tcp4(40012, 81, { body: body4(1480), df: false });
const fit4 = tcp4(40013, 81, { body: body4(MTU - 20) });
const big6 = tcp6(40010, 81, { body: body6(MTU - 40 + 1) });
const fit6 = tcp6(40013, 81, { body: body6(MTU - 40) });

const tooBig: Case[] = [
  tooBigCase(
    'IPv4 with DF one byte too big to encapsulate: ICMP fragmentation-needed (MTU - 20) back to the client',
    S.tx4,
    [ETH_IN],
    big4,
    packet(
      ETH_BACK,
      ipv4({ src: VIP4, dst: CLIENT4, ttl: 64 }),
      icmpFragNeeded({ mtu: MTU - 20 }),
      payload(ipBytes(big4).subarray(0, 68)),
    ),
    { outcome: 'ICMP_TOO_BIG' },
    'tx',
    B.tx4.id,
  ),
  tooBigCase(
    'IPv4 with DF too big, 802.1Q tagged: the ICMP answer goes back with the tag',
    S.tx4,
    [ETH_IN, vlan({ vid: 100 })],
    big4Tagged,
    packet(
      ETH_BACK,
      vlan({ vid: 100 }),
      ipv4({ src: VIP4, dst: CLIENT4, ttl: 64 }),
      icmpFragNeeded({ mtu: MTU - 20 }),
      payload(ipBytes(big4Tagged).subarray(0, 68)),
    ),
    { outcome: 'ICMP_TOO_BIG' },
    'tx',
    B.tx4.id,
  ),
  tooBigCase(
    'IPv4 without DF too big to encapsulate: TOO_BIG drop',
    S.tx4,
    [ETH_IN],
    big4NoDf,
    undefined,
    { drop: 'TOO_BIG' },
    'drop',
    B.tx4.id,
  ),
  tooBigCase(
    'IPv6 one byte too big to encapsulate: ICMPv6 packet-too-big (MTU - 40), 128-byte quote',
    S.tx6,
    [ETH_IN],
    big6,
    packet(
      ETH_BACK,
      ipv6({ src: VIP6, dst: CLIENT6, hopLimit: 64 }),
      icmpv6PacketTooBig({ mtu: MTU - 40 }),
      payload(ipBytes(big6).subarray(0, 128)),
    ),
    { outcome: 'ICMP_TOO_BIG' },
    'tx',
    B.tx6.id,
  ),
  encap(
    'IPv4 exactly at the limit (MTU - 20) is encapsulated',
    S.tx4,
    fit4,
    [ETH_IN],
    { eth: ETH_TX, outer: outer4(PEER4.tx) },
    'tx',
    TX,
    { backend: B.tx4.id },
  ),
  encap(
    'IPv4 encapsulated packet over the route MTU (FIB says fragmentation needed): TOO_BIG drop',
    S.smallMtu4,
    tcp4(40014, 86, { body: body4(1300 - 20 + 1) }),
    [ETH_IN],
    { eth: ETH_IN, outer: outer4(PEER4.smallMtu) },
    'drop',
    { drop: 'TOO_BIG' },
    { backend: B.smallMtu4.id },
  ),
  encap(
    'IPv4 encapsulated packet exactly at the route MTU is sent',
    S.smallMtu4,
    tcp4(40015, 86, { body: body4(1300 - 20) }),
    [ETH_IN],
    { eth: ETH_TX, outer: outer4(PEER4.smallMtu) },
    'tx',
    TX,
    { backend: B.smallMtu4.id },
  ),
  encap(
    'IPv6 encapsulated packet over the route MTU (FIB says fragmentation needed): TOO_BIG drop',
    S.smallMtu6,
    tcp6(40014, 86, { body: body6(1300 - 40 + 1) }),
    [ETH_IN],
    { eth: ETH_IN, outer: outer6(PEER6.smallMtu, 0, label6(S.smallMtu6, 40014)) },
    'drop',
    { drop: 'TOO_BIG' },
    { backend: B.smallMtu6.id },
  ),
  encap(
    'IPv6 exactly at the limit (MTU - 40) is encapsulated',
    S.tx6,
    fit6,
    [ETH_IN],
    { eth: ETH_TX, outer: outer6(PEER6.tx, 0, label6(S.tx6, 40013)) },
    'tx',
    TX,
    { backend: B.tx6.id },
  ),
];

/** An ICMP error from a router on the way back to the client, about a reply from VIP:port. */
const router4 = '192.0.2.99';
const router6 = '2001:db8:c::99';
const quoted4 = (vport: number, cport: number) => [
  ipv4({ src: VIP4, dst: CLIENT4, flags: ['DF'] }),
  tcp({ sport: vport, dport: cport, seq: 5, ack: 6, flags: ['ACK'] }),
  payload(Buffer.alloc(1400, 0x63)),
];
const quoted6 = (vport: number, cport: number) => [
  ipv6({ src: VIP6, dst: CLIENT6 }),
  tcp({ sport: vport, dport: cport, seq: 5, ack: 6, flags: ['ACK'] }),
  payload(Buffer.alloc(1400, 0x64)),
];
const icmp4Err = [
  ipv4({ src: router4, dst: VIP4, tos: 0xc0 }),
  icmpFragNeeded({ mtu: 1280 }),
  quote(...quoted4(81, 40020)),
];
const icmp6Err = [
  ipv6({ src: router6, dst: VIP6 }),
  icmpv6PacketTooBig({ mtu: 1280 }),
  quoteFirst(200, ...quoted6(81, 40020)),
];

const icmpRemote: Case[] = [
  {
    name: 'ICMP fragmentation-needed about a remote backend flow: IPIP to its node (ICMP_ENCAP)',
    input: packet(ETH_IN, ...icmp4Err),
    expect: {
      verdict: 'tx',
      output: packet(ETH_TX, outer4(PEER4.tx, 0xc0), ...icmp4Err),
      slot: TX,
      events: { ICMP_ENCAP: 1, CONNTRACK_MISS: 1 },
    },
  },
  {
    name: 'ICMPv6 packet-too-big about a remote backend flow: IPv6-in-IPv6 to its node, flow label of the quoted flow',
    input: packet(ETH_IN, ...icmp6Err),
    expect: {
      verdict: 'tx',
      output: packet(ETH_TX, outer6(PEER6.tx, 0, label6(S.tx6, 40020)), ...icmp6Err),
      slot: TX,
      events: { ICMP_ENCAP: 1, CONNTRACK_MISS: 1 },
    },
  },
];

/** An ICMP error with a quote so long that it cannot be encapsulated either. */
const bigIcmp4Err = [
  ipv4({ src: router4, dst: VIP4, flags: ['DF'] }),
  icmpFragNeeded({ mtu: 1280 }),
  quoteFirst(MTU, ...quoted4(81, 40021)),
];
icmpRemote.push({
  name: 'ICMP error about a remote backend flow, too big to encapsulate: TOO_BIG drop, never answered',
  input: packet(ETH_IN, ...bigIcmp4Err),
  expect: { verdict: 'drop', slot: { drop: 'TOO_BIG' }, events: { CONNTRACK_MISS: 1 } },
});

describe('datapath fixtures: remote backends, FIB and too-big (XDP test_run in a namespace)', () => {
  let dp: Datapath;
  let net: NodeNetwork;

  beforeAll(() => {
    requirePrivileges('datapath-fixtures-remote');
    net = NodeNetwork.create();
    dp = loadFixtureDatapath();
  });
  afterAll(() => {
    dp?.close();
    net?.destroy();
  });

  function runCase(c: Case): void {
    const ingress = c.ingress === 'eth1' ? net.eth1 : net.eth0;
    const svcBefore = c.counted && dp.maps.serviceCounters(c.counted.svc.id);
    const beBefore = c.counted && dp.maps.backendCounters(c.counted.backend);
    if (c.uncached) dp.maps.invalidateFlowCache();
    try {
      expectPacket(dp, c.input, c.expect, { netns: net.node, ingressIfindex: ingress });
    } catch (e) {
      (e as Error).message += `\nneighbours of the node namespace:\n${net.neighbours()}`;
      throw e;
    }
    if (!c.counted) return;
    const svcAfter = dp.maps.serviceCounters(c.counted.svc.id);
    const beAfter = dp.maps.backendCounters(c.counted.backend);
    const n = c.counted.newFlow ? 1n : 0n;
    expect({
      service: svcAfter.packets - svcBefore!.packets,
      serviceBytes: svcAfter.bytes - svcBefore!.bytes,
      serviceNew: svcAfter.newFlows - svcBefore!.newFlows,
      backend: beAfter.packets - beBefore!.packets,
      backendNew: beAfter.newFlows - beBefore!.newFlows,
    }).toEqual({
      service: 1n,
      serviceBytes: BigInt(c.input.length),
      serviceNew: n,
      backend: 1n,
      backendNew: n,
    });
  }

  describe('encapsulation to the backend node', () => {
    it.each(encapsulation)('$name', (c) => runCase(c));
  });
  describe('too big to encapsulate', () => {
    it.each(tooBig)('$name', (c) => runCase(c));
  });
  describe('ICMP errors about a remote backend flow', () => {
    it.each(icmpRemote)('$name', (c) => runCase(c));
  });

  it('with ICMP too-big answers switched off, an IPv4 DF packet too big to encapsulate is dropped (TOO_BIG)', () => {
    using quiet = loadDatapath({
      hashSeed: SEED,
      mtu: MTU,
      nodeIPv4: NODE4,
      nodeIPv6: NODE6,
      icmpTooBig: false,
    });
    quiet.maps.setVip(VIP4, 1);
    installBackend(quiet, B.tx4);
    installService(quiet, S.tx4);
    expectPacket(
      quiet,
      packet(ETH_IN, ...tcp4(40031, 81, { body: body4(MTU - 20 + 1) })),
      { verdict: 'drop', slot: { drop: 'TOO_BIG' }, events: { CONNTRACK_MISS: 1 } },
      { netns: net.node, ingressIfindex: net.eth0 },
    );
  });

  it('IPv6 too big with a 1300-byte MTU reports the IPv6 minimum, 1280', () => {
    using small = loadDatapath({ hashSeed: SEED, mtu: 1300, nodeIPv4: NODE4, nodeIPv6: NODE6 });
    small.maps.setVip(VIP6, 1);
    installBackend(small, B.tx6);
    installService(small, S.tx6);
    const inner = tcp6(40030, 81, { body: body6(1300 - 40 + 1) });
    expectPacket(
      small,
      packet(ETH_IN, ...inner),
      {
        verdict: 'tx',
        output: packet(
          ETH_BACK,
          ipv6({ src: VIP6, dst: CLIENT6, hopLimit: 64 }),
          icmpv6PacketTooBig({ mtu: 1280 }),
          payload(ipBytes(inner).subarray(0, 128)),
        ),
        slot: { outcome: 'ICMP_TOO_BIG' },
        events: { CONNTRACK_MISS: 1 },
      },
      { netns: net.node, ingressIfindex: net.eth0 },
    );
  });
});
