// Well-formed packets of every kind the datapath meets, built with the packet
// builder, each with a map of where its layers start and where its length and
// protocol fields sit (found by the dissector), so the mutator can cut and
// corrupt them cheaply and precisely.
import {
  destOpts,
  dissect,
  eth,
  frag6,
  hopByHop,
  icmp,
  icmpEcho,
  icmpFragNeeded,
  icmpv6,
  icmpv6Echo,
  icmpv6PacketTooBig,
  ipv4,
  ipv6,
  ipv6Ext,
  packet,
  padN,
  payload,
  quote,
  quoteFirst,
  routing,
  tcp,
  udp,
  vlan,
  type Layer,
  type TcpOption,
} from '../packet/index.js';
import { Rng } from './rng.js';
import {
  FRONTENDS,
  NODE4,
  NODE6,
  NODE_MAC,
  PEER_MAC,
  PINNED,
  REMOTE,
  VIPS,
  type Fam,
  type FrontendSpec,
} from './world.js';

/** Where a field sits, and how wide it is. */
export type FieldWidth = 'u8' | 'u16' | 'lo4' | 'hi4';

export interface FieldRef {
  off: number;
  width: FieldWidth;
}

export interface Base {
  bytes: Buffer;
  /** What the generator meant to make, for failure reports. */
  kind: string;
  /** Offsets where a header (or a distinct part of one) starts. */
  boundaries: number[];
  /** IPv4 total length and IHL, IPv6 payload length, extension header lengths, TCP data offset, UDP length. */
  lengths: FieldRef[];
  /** IPv4 protocol, IPv6 / extension next header. */
  protocols: number[];
  /** Ethernet and VLAN ethertypes. */
  ethertypes: number[];
  /** IPv4 flags + fragment offset, IPv6 fragment offset words. */
  fragWords: number[];
  /** The packet's own IP headers (not ICMP quotes), outermost first. */
  ipHeaders: { start: number; version: 4 | 6 }[];
}

const lastSegment = (path: string): string => path.slice(path.lastIndexOf('.') + 1);
const layerOf = (path: string): string => {
  const dot = path.lastIndexOf('.');
  return dot < 0 ? path : path.slice(0, dot);
};

/** Finds the fields worth mutating with the dissector. */
export function analyse(bytes: Buffer, kind: string): Base {
  const base: Base = {
    bytes,
    kind,
    boundaries: [],
    lengths: [],
    protocols: [],
    ethertypes: [],
    fragWords: [],
    ipHeaders: [],
  };
  const boundaries = new Set<number>([bytes.length]);
  let prev = '';
  for (const f of dissect(bytes)) {
    const layer = layerOf(f.path);
    if (layer !== prev && f.offset >= 14) boundaries.add(f.offset);
    prev = layer;
    const name = lastSegment(f.path);
    const quoted = f.path.includes('icmp.inner.') || f.path.includes('icmpv6.inner.');
    switch (name) {
      case 'totalLength':
      case 'payloadLength':
        base.lengths.push({ off: f.offset, width: 'u16' });
        break;
      case 'length':
        if (layer.endsWith('udp')) base.lengths.push({ off: f.offset, width: 'u16' });
        break;
      case 'ihl':
        base.lengths.push({ off: f.offset, width: 'lo4' });
        break;
      case 'dataOffset':
        base.lengths.push({ off: f.offset, width: 'hi4' });
        break;
      case 'hdrExtLen':
        base.lengths.push({ off: f.offset, width: 'u8' });
        break;
      case 'protocol':
      case 'nextHeader':
        base.protocols.push(f.offset);
        break;
      case 'type':
        if (layer === 'eth' || layer.startsWith('vlan[')) base.ethertypes.push(f.offset);
        break;
      case 'flags':
        if (layer.endsWith('ipv4')) base.fragWords.push(f.offset);
        break;
      case 'offset':
        if (/\.frag\[\d+\]$/.test(layer)) base.fragWords.push(f.offset);
        break;
      case 'version':
        if (!quoted && (layer.endsWith('ipv4') || layer.endsWith('ipv6'))) {
          base.ipHeaders.push({ start: f.offset, version: layer.endsWith('ipv4') ? 4 : 6 });
        }
        break;
    }
  }
  base.boundaries = [...boundaries].sort((a, b) => a - b);
  return base;
}

// ---------------------------------------------------------------------------
// Addresses and small parts.

const octet = (r: Rng): number => r.below(256);

function clientAddress(r: Rng, fam: Fam): string {
  if (fam === 'v4') {
    return r.weighted<() => string>([
      [45, () => `192.0.2.${octet(r)}`],
      [20, () => `198.51.100.${octet(r)}`],
      [35, () => `${r.int(1, 223)}.${octet(r)}.${octet(r)}.${octet(r)}`],
    ])();
  }
  const h = (): string => r.below(0x10000).toString(16);
  return r.weighted<() => string>([
    [50, () => `2001:db8:c::${h()}:${h()}`],
    [20, () => `2001:db8:d:${h()}::${h()}`],
    [30, () => `2a02:${h()}:${h()}:${h()}::${h()}`],
  ])();
}

function otherAddress(r: Rng, fam: Fam): string {
  // Not a VIP, not this node: somewhere on the internet or in the cluster.
  if (fam === 'v4') return `${r.int(1, 223)}.${octet(r)}.${octet(r)}.${r.int(1, 254)}`;
  return `2a03:${r.below(0x10000).toString(16)}::${r.int(1, 0xffff).toString(16)}`;
}

const remoteNode = (r: Rng, fam: Fam): string =>
  r.pick([REMOTE.tx, REMOTE.redirect, REMOTE.kernel, REMOTE.unreachable])[fam];

function l2(r: Rng): Layer[] {
  const e = eth({ src: PEER_MAC, dst: NODE_MAC });
  const tags = r.weighted([
    [72, 0],
    [18, 1],
    [10, 2],
  ]);
  if (tags === 0) return [e];
  if (tags === 1) return [e, vlan({ vid: r.int(1, 4094), pcp: r.below(8) })];
  return [e, vlan({ vid: r.int(1, 4094), tpid: 0x88a8 }), vlan({ vid: r.int(1, 4094) })];
}

function payloadLength(r: Rng): number {
  return r.weighted<() => number>([
    [50, () => r.int(0, 64)],
    [25, () => r.int(65, 1200)],
    [25, () => r.int(1300, 1540)],
  ])();
}

const data = (r: Rng, n: number): Layer => payload(r.bytes(n));

function tcpOptions(r: Rng): TcpOption[] {
  if (!r.chance(0.3)) return [];
  return [
    { kind: 'mss', value: r.int(536, 1460) },
    { kind: 'sackOk' },
    { kind: 'timestamp', value: r.u32(), echo: r.u32() },
    { kind: 'nop' },
    { kind: 'wscale', shift: r.int(0, 14) },
  ].slice(0, r.int(1, 5)) as TcpOption[];
}

function ipv4Options(r: Rng): number[] | undefined {
  if (!r.chance(0.12)) return undefined;
  return r.pick<number[]>([
    [1, 1, 1, 1],
    [148, 4, 0, 0], // router alert
    [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0], // record route, one slot
    [68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0], // timestamp
    [...r.bytes(r.int(1, 40))],
  ]);
}

function ttl(r: Rng): number {
  return r.chance(0.04) ? r.int(0, 1) : r.pick([2, 32, 64, 64, 64, 128, 255]);
}

/** Zero to a few extension headers; `unsupported` forces one the datapath refuses. */
function extensionChain(r: Rng, unsupported: boolean): Layer[] {
  const out: Layer[] = [];
  const n = r.chance(0.8) ? 0 : r.int(1, 3);
  for (let i = 0; i < n; i++) {
    out.push(
      r.pick<() => Layer>([
        () => hopByHop({ options: [padN(4)] }),
        () => destOpts({ options: [padN(r.pick([4, 12]))] }),
        () => routing({ routingType: 4, addresses: [`2001:db8:5::${r.int(1, 99)}`] }),
        () => ipv6Ext(51, r.bytes(10)), // AH, 12 bytes
      ])(),
    );
  }
  if (unsupported) {
    out.push(
      r.pick<() => Layer>([
        () => routing({ routingType: 4, addresses: ['2001:db8:5::1', '2001:db8:5::2'] }),
        () => routing({ routingType: 0, addresses: ['2001:db8:5::1'] }),
        () => ipv6Ext(135, r.bytes(6)), // mobility
        () => ipv6Ext(139, r.bytes(6)), // HIP
        () => ipv6Ext(253, r.bytes(6)), // experimental
        // Longer than the datapath walks.
        () => ipv6Ext(60, Buffer.alloc(6), { nextHeader: 60 }),
      ])(),
    );
    const last = out[out.length - 1]!;
    if (last.kind === 'ipv6-ext' && last.nextHeader === 60) {
      for (let i = 0; i < 6; i++) out.push(destOpts({ options: [padN(4)] }));
    }
  }
  return out;
}

interface IpOpts {
  df?: boolean;
  fragment?: boolean;
  unsupportedExt?: boolean;
}

/** The IP header(s) of a packet from `src` to `dst`. */
function ipHeader(r: Rng, fam: Fam, src: string, dst: string, o: IpOpts = {}): Layer[] {
  if (fam === 'v4') {
    const flags: ('DF' | 'MF')[] = (o.df ?? r.chance(0.5)) ? ['DF'] : [];
    let fragOffset: number | undefined;
    if (o.fragment) {
      if (r.chance(0.5)) flags.push('MF');
      if (!flags.includes('MF') || r.chance(0.5)) fragOffset = 8 * r.int(1, 180);
    }
    const options = ipv4Options(r);
    return [
      ipv4({
        src,
        dst,
        ttl: ttl(r),
        tos: r.chance(0.2) ? r.below(256) : 0,
        id: r.below(0x10000),
        flags,
        ...(fragOffset !== undefined ? { fragOffset } : {}),
        ...(options ? { options } : {}),
      }),
    ];
  }
  const out: Layer[] = [
    ipv6({
      src,
      dst,
      hopLimit: ttl(r),
      flowLabel: r.below(0x100000),
      trafficClass: r.chance(0.2) ? r.below(256) : 0,
    }),
    ...extensionChain(r, o.unsupportedExt ?? false),
  ];
  if (o.fragment) {
    const more = r.chance(0.5);
    out.push(frag6({ id: r.u32(), more, offset: more && r.chance(0.5) ? 0 : 8 * r.int(1, 180) }));
  }
  return out;
}

const frontendsOf = (fam: Fam): FrontendSpec[] => FRONTENDS.filter((f) => f.fam === fam);

function transport(r: Rng, proto: 'TCP' | 'UDP', sport: number, dport: number): Layer[] {
  const n = payloadLength(r);
  const l4 =
    proto === 'TCP'
      ? tcp({
          sport,
          dport,
          seq: r.u32(),
          ack: r.u32(),
          flags: r.pick([['SYN'], ['ACK'], ['PSH', 'ACK'], ['FIN', 'ACK'], ['RST']]),
          window: r.below(0x10000),
          options: tcpOptions(r),
        })
      : udp({ sport, dport, ...(r.chance(0.1) && n > 0 ? { checksum: 0 } : {}) });
  return n > 0 ? [l4, data(r, n)] : [l4];
}

const port = (r: Rng): number => r.int(1, 65535);
const clientPort = (r: Rng): number => r.int(1024, 65535);

/** TCP or UDP to a frontend (usually) or to an unserved port of the VIP. */
function toVip(r: Rng, fam: Fam, o: IpOpts = {}): { layers: Layer[]; kind: string } {
  const f = r.pick(frontendsOf(fam));
  const served = r.chance(0.85);
  const proto = served ? f.proto : r.pick(['TCP', 'UDP'] as const);
  const dport = served ? f.port : port(r);
  const layers = [
    ...ipHeader(r, fam, clientAddress(r, fam), f.vip, o),
    ...transport(r, proto, clientPort(r), dport),
  ];
  return { layers, kind: `${fam} ${proto} to ${f.vip}:${dport}` };
}

/** An ICMP error sent to a VIP, quoting what the VIP sent to a client. */
function icmpErrorToVip(r: Rng, fam: Fam): { layers: Layer[]; kind: string } {
  const f = r.pick(frontendsOf(fam));
  const client = clientAddress(r, fam);
  const router = otherAddress(r, fam);
  const variant = r.weighted([
    [70, 'flow'],
    [8, 'other-source'],
    [8, 'icmp-quoted'],
    [8, 'other-error'],
    [6, 'short-quote'],
  ] as const);
  const quotedSrc = variant === 'other-source' ? otherAddress(r, fam) : f.vip;
  const qProto = r.chance(0.9) ? f.proto : f.proto === 'TCP' ? 'UDP' : 'TCP';
  const qTransport: Layer =
    qProto === 'TCP'
      ? tcp({ sport: f.port, dport: clientPort(r), seq: r.u32(), flags: ['ACK'] })
      : udp({ sport: f.port, dport: clientPort(r) });
  const quotedIp =
    fam === 'v4'
      ? ipv4({
          src: quotedSrc,
          dst: client,
          flags: ['DF'],
          ...(r.chance(0.1) ? { options: [1, 1, 1, 1] } : {}),
        })
      : ipv6({ src: quotedSrc, dst: client });
  const inner: Layer[] =
    variant === 'icmp-quoted'
      ? [quotedIp, fam === 'v4' ? icmpEcho({ id: 1, seq: 1 }) : icmpv6Echo({ id: 1, seq: 1 })]
      : [quotedIp, qTransport, data(r, r.chance(0.8) ? r.int(0, 200) : r.int(200, 1400))];
  const q =
    variant === 'short-quote'
      ? quoteFirst(r.int(0, fam === 'v4' ? 23 : 43), ...inner)
      : quote(...inner);
  let msg: Layer;
  if (fam === 'v4') {
    msg =
      variant === 'other-error'
        ? icmp({ type: r.pick([3, 11, 12]), code: r.pick([0, 1, 3]) })
        : icmpFragNeeded({ mtu: r.int(552, 1500) });
  } else {
    msg =
      variant === 'other-error'
        ? icmpv6({ type: r.pick([1, 3, 4]), code: r.below(4) })
        : icmpv6PacketTooBig({ mtu: r.int(1280, 1500) });
  }
  return {
    layers: [...ipHeader(r, fam, router, f.vip), msg, q],
    kind: `${fam} ICMP error (${variant}) to ${f.vip} quoting :${f.port}/${qProto}`,
  };
}

/** Not TCP, UDP or an ICMP error: echo, other protocols, the wrong ICMP for the family. */
function otherToVip(r: Rng, fam: Fam): { layers: Layer[]; kind: string } {
  const vip = r.pick(VIPS[fam]);
  const ip = ipHeader(r, fam, clientAddress(r, fam), vip);
  const what = r.pick(['echo', 'gre', 'sctp', 'wrong-icmp', 'none'] as const);
  const body = data(r, r.int(0, 100));
  let layers: Layer[];
  switch (what) {
    case 'echo':
      layers = [
        ...ip,
        fam === 'v4'
          ? icmpEcho({ id: r.below(0x10000), seq: r.below(0x10000) })
          : icmpv6Echo({ id: 1, seq: 2 }),
        body,
      ];
      break;
    case 'wrong-icmp':
      layers =
        fam === 'v4'
          ? [...ip, icmpv6({ type: 2, checksum: 0 }), body]
          : [...ip, icmp({ type: 3, code: 4 }), body];
      break;
    default:
      layers = withProtocol(ip, what === 'gre' ? 47 : what === 'sctp' ? 132 : 59, body);
  }
  return { layers, kind: `${fam} ${what} to ${vip}` };
}

/** IP headers followed by raw bytes announced as `protocol`. */
function withProtocol(ip: Layer[], protocol: number, body: Layer): Layer[] {
  const last = ip[ip.length - 1]!;
  switch (last.kind) {
    case 'ipv4':
    case 'ipv6':
      return [
        ...ip.slice(0, -1),
        { ...last, ...(last.kind === 'ipv4' ? { protocol } : { nextHeader: protocol }) },
        body,
      ];
    case 'frag6':
    case 'hop-by-hop':
    case 'dest-opts':
    case 'routing':
    case 'ipv6-ext':
      return [...ip.slice(0, -1), { ...last, nextHeader: protocol }, body];
    default:
      return [...ip, body];
  }
}

/** Fragments towards a VIP: no ports to balance on. */
function fragmentToVip(r: Rng, fam: Fam): { layers: Layer[]; kind: string } {
  const { layers, kind } = toVip(r, fam, { fragment: true });
  return { layers, kind: `${kind}, fragment` };
}

/** IPv6 towards a VIP through an extension header the datapath refuses. */
function unsupportedExtToVip(r: Rng): { layers: Layer[]; kind: string } {
  const { layers, kind } = toVip(r, 'v6', { unsupportedExt: true });
  return { layers, kind: `${kind}, unsupported extension` };
}

/** Traffic that is none of the load balancer's business. */
function toOther(r: Rng, fam: Fam, dst: string): { layers: Layer[]; kind: string } {
  const ip = ipHeader(r, fam, clientAddress(r, fam), dst, { fragment: r.chance(0.05) });
  const what = r.pick(['tcp', 'udp', 'icmp'] as const);
  const l4: Layer[] =
    what === 'icmp'
      ? [
          fam === 'v4' ? icmpEcho({ id: 7, seq: r.below(0x10000) }) : icmpv6Echo({ id: 7, seq: 1 }),
          data(r, r.int(0, 64)),
        ]
      : transport(r, what === 'tcp' ? 'TCP' : 'UDP', clientPort(r), port(r));
  return { layers: [...ip, ...l4], kind: `${fam} ${what} to ${dst}` };
}

/** What another node's datapath sends this one: the client's packet in a tunnel. */
function tunnelled(r: Rng, fam: Fam): { layers: Layer[]; kind: string } {
  const node = fam === 'v4' ? NODE4 : NODE6;
  const variant = r.weighted([
    [60, 'vip'],
    [12, 'icmp-error'],
    [10, 'not-vip'],
    [6, 'short'],
    [6, 'outer-fragment'],
    [6, 'vip-fragment'],
  ] as const);
  const outer = ipHeader(r, fam, remoteNode(r, fam), node, {
    df: true,
    fragment: variant === 'outer-fragment',
  });
  if (fam === 'v6' && r.chance(0.1)) outer.push(destOpts({ options: [padN(4)] }));
  let inner: { layers: Layer[]; kind: string };
  switch (variant) {
    case 'vip':
    case 'outer-fragment':
      inner = toVip(r, fam);
      break;
    case 'vip-fragment':
      inner = fragmentToVip(r, fam);
      break;
    case 'icmp-error':
      inner = icmpErrorToVip(r, fam);
      break;
    case 'not-vip':
      inner = toOther(r, fam, otherAddress(r, fam));
      break;
    case 'short':
      // Less than an IP header inside: nothing to decapsulate into.
      return {
        layers: withProtocol(outer, fam === 'v4' ? 4 : 41, data(r, r.int(0, 24))),
        kind: `${fam} tunnel to this node with a short inner packet`,
      };
  }
  return {
    layers: [...outer, ...inner.layers],
    kind: `${fam} tunnel (${variant}) to this node: ${inner.kind}`,
  };
}

/** Tunnels this node does not take apart: the wrong family inside, or not addressed to it. */
function otherTunnel(r: Rng): { layers: Layer[]; kind: string } {
  const variant = r.pick(['6in4', '4in6', 'to-vip', 'to-other'] as const);
  switch (variant) {
    case '6in4':
      return {
        layers: [...ipHeader(r, 'v4', remoteNode(r, 'v4'), NODE4), ...toVip(r, 'v6').layers],
        kind: '6in4 to this node',
      };
    case '4in6':
      return {
        layers: [...ipHeader(r, 'v6', remoteNode(r, 'v6'), NODE6), ...toVip(r, 'v4').layers],
        kind: '4in6 to this node',
      };
    case 'to-vip': {
      const fam = r.pick(['v4', 'v6'] as const);
      return {
        layers: [
          ...ipHeader(r, fam, remoteNode(r, fam), r.pick(VIPS[fam])),
          ...toVip(r, fam).layers,
        ],
        kind: `${fam} tunnel to a VIP`,
      };
    }
    case 'to-other': {
      const fam = r.pick(['v4', 'v6'] as const);
      return {
        layers: [
          ...ipHeader(r, fam, remoteNode(r, fam), otherAddress(r, fam)),
          ...toVip(r, fam).layers,
        ],
        kind: `${fam} tunnel to elsewhere`,
      };
    }
  }
}

function nonIp(r: Rng): Buffer {
  const head = Buffer.alloc(14);
  head.writeUInt16BE(r.pick([0x0806, 0x88cc, 0x8847, 0x22f0, 0x0842, r.below(0x10000)]), 12);
  return Buffer.concat([head, r.bytes(r.int(0, 100))]);
}

/** A packet of every pinned flow, so each one's conntrack entry is met. */
function pinnedPackets(r: Rng): { layers: Layer[]; kind: string }[] {
  return PINNED.map((p) => ({
    layers: [
      ...ipHeader(r, p.fam, p.client, p.vip, { df: true }),
      p.proto === 'TCP'
        ? tcp({ sport: p.clientPort || 40123, dport: p.port, flags: ['ACK'] })
        : udp({ sport: p.clientPort || 40123, dport: p.port }),
      payload('pinned'),
    ],
    kind: `pinned flow ${p.client} -> ${p.vip}:${p.port}/${p.proto}`,
  }));
}

function oneBase(r: Rng): { bytes: Buffer; kind: string } {
  const fam = r.chance(0.5) ? 'v4' : 'v6';
  const gen = r.weighted<() => { layers: Layer[]; kind: string } | Buffer>([
    [30, () => toVip(r, fam)],
    [10, () => icmpErrorToVip(r, fam)],
    [4, () => otherToVip(r, fam)],
    [5, () => fragmentToVip(r, fam)],
    [2, () => unsupportedExtToVip(r)],
    [9, () => toOther(r, fam, otherAddress(r, fam))],
    [3, () => toOther(r, fam, fam === 'v4' ? NODE4 : NODE6)],
    [22, () => tunnelled(r, fam)],
    [2, () => otherTunnel(r)],
    [3, () => nonIp(r)],
  ]);
  const made = gen();
  if (Buffer.isBuffer(made)) return { bytes: made, kind: 'not IP' };
  return { bytes: packet(...l2(r), ...made.layers), kind: made.kind };
}

/**
 * `count` base packets from `seed`: first one for every pinned flow, then a
 * mix of every kind. Deterministic in the seed.
 */
export function buildCorpus(seed: number, count: number): Base[] {
  const r = new Rng(seed);
  const out: Base[] = [];
  for (const p of pinnedPackets(r)) out.push(analyse(packet(...l2(r), ...p.layers), p.kind));
  while (out.length < count) {
    const { bytes, kind } = oneBase(r);
    out.push(analyse(bytes, kind));
  }
  return out;
}
