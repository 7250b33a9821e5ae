import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  checksumVerifies,
  corruptChecksum,
  destOpts,
  diffPackets,
  dissect,
  eth,
  formatFields,
  frag6,
  fragments,
  homeAddress,
  hopByHop,
  icmp,
  icmpEcho,
  icmpFragNeeded,
  icmpv6,
  icmpv6Echo,
  icmpv6PacketTooBig,
  internetChecksum,
  ipv4,
  ipv4HeaderChecksum,
  ipv6,
  ipv6Ext,
  onesComplementSum,
  packet,
  padN,
  payload,
  quote,
  quoteFirst,
  routerAlert,
  routing,
  tcp,
  udp,
  vlan,
  type Field,
  type FieldValue,
  type Layer,
} from './support/packet/index.js';

const MAC_A = '02:00:00:00:00:01';
const MAC_B = '02:00:00:00:00:02';
const ETH = eth({ src: MAC_A, dst: MAC_B });
const SCAPY_ETH = `Ether(src='${MAC_A}', dst='${MAC_B}')`;

function values(fields: readonly Field[]): Record<string, FieldValue> {
  return Object.fromEntries(fields.map((f) => [f.path, f.value]));
}

function notes(fields: readonly Field[], suffix: string): Record<string, string | undefined> {
  return Object.fromEntries(
    fields.filter((f) => f.path.endsWith(suffix)).map((f) => [f.path, f.note]),
  );
}

/** Hex written with spaces between fields for the reader, e.g. h('4500 0073'). */
function h(spaced: string): string {
  return spaced.replaceAll(' ', '');
}

function hexOf(buf: Buffer): string {
  return buf.toString('hex');
}

// ---------------------------------------------------------------------------------------------
// scapy cross-check

interface ScapyCase {
  readonly name: string;
  /** One packet, or several (fragments). */
  readonly build: () => Buffer | Buffer[];
  /** A Python expression evaluating to a scapy packet or a list of them. */
  readonly scapy: string;
}

const V4 = { src: '192.0.2.1', dst: '198.51.100.10' };
const SCAPY_V4 = `src='${V4.src}', dst='${V4.dst}', id=0`;
const V6 = { src: '2001:db8::1', dst: '2001:db8:0:1::2' };
const SCAPY_V6 = `src='${V6.src}', dst='${V6.dst}'`;

/** A 2-byte UDP payload for which the computed checksum is exactly 0 (sent as 0xffff). */
function payloadForZeroUdpChecksum(): Buffer {
  const probe = packet(ipv4(V4), udp({ sport: 1, dport: 2 }), payload([0, 0]));
  const sum = ~probe.readUInt16BE(26) & 0xffff;
  const word = 0xffff - sum;
  return Buffer.from([word >> 8, word & 0xff]);
}

const ZERO_SUM_PAYLOAD = payloadForZeroUdpChecksum();

const SCAPY_CASES: readonly ScapyCase[] = [
  {
    name: 'VLAN + IPv4 + TCP SYN with MSS and payload',
    build: () =>
      packet(
        ETH,
        vlan({ vid: 100 }),
        ipv4({ ...V4, ttl: 5 }),
        tcp({ sport: 40000, dport: 80, flags: ['SYN'], options: [{ kind: 'mss', value: 1460 }] }),
        payload('hello'),
      ),
    scapy: `${SCAPY_ETH}/Dot1Q(vlan=100)/IP(${SCAPY_V4}, ttl=5)/TCP(sport=40000, dport=80, flags='S', window=65535, options=[('MSS', 1460)])/Raw(b'hello')`,
  },
  {
    name: 'QinQ (802.1ad outer, DEI inner) + IPv4 + UDP',
    build: () =>
      packet(
        ETH,
        vlan({ vid: 10, pcp: 3, tpid: 0x88a8 }),
        vlan({ vid: 20, dei: true }),
        ipv4(V4),
        udp({ sport: 5353, dport: 53 }),
        payload('query'),
      ),
    scapy: `${SCAPY_ETH}/Dot1AD(vlan=10, prio=3, type=0x8100)/Dot1Q(vlan=20, id=1)/IP(${SCAPY_V4})/UDP(sport=5353, dport=53)/Raw(b'query')`,
  },
  {
    name: 'IPv4 router-alert option, DF, TOS, id',
    build: () =>
      packet(
        ETH,
        ipv4({ ...V4, options: [148, 4, 0, 0], flags: ['DF'], tos: 0xb8, id: 0x1234, ttl: 1 }),
        udp({ sport: 1000, dport: 2000 }),
      ),
    scapy: `${SCAPY_ETH}/IP(src='${V4.src}', dst='${V4.dst}', options=[IPOption_Router_Alert()], flags='DF', tos=0xb8, id=0x1234, ttl=1)/UDP(sport=1000, dport=2000)`,
  },
  {
    name: 'IPv4 loose source route: TCP checksum uses the final destination',
    build: () =>
      packet(
        ETH,
        ipv4({
          ...V4,
          options: [0x83, 11, 4, 198, 51, 100, 1, 203, 0, 113, 7],
        }),
        tcp({ sport: 1234, dport: 443, flags: ['ACK'], seq: 1, ack: 2 }),
      ),
    scapy: `${SCAPY_ETH}/IP(${SCAPY_V4}, options=[IPOption_LSRR(routers=['198.51.100.1', '203.0.113.7'])])/TCP(sport=1234, dport=443, flags='A', seq=1, ack=2, window=65535)`,
  },
  {
    name: 'TCP with MSS, SACK-permitted, timestamps, NOP, window scale',
    build: () =>
      packet(
        ETH,
        ipv4(V4),
        tcp({
          sport: 33000,
          dport: 8080,
          seq: 0xdeadbeef,
          flags: ['SYN', 'ECE', 'CWR'],
          window: 29200,
          options: [
            { kind: 'mss', value: 1460 },
            { kind: 'sackOk' },
            { kind: 'timestamp', value: 12345, echo: 0 },
            { kind: 'nop' },
            { kind: 'wscale', shift: 7 },
          ],
        }),
      ),
    scapy: `${SCAPY_ETH}/IP(${SCAPY_V4})/TCP(sport=33000, dport=8080, seq=0xdeadbeef, flags='SEC', window=29200, options=[('MSS', 1460), ('SAckOK', b''), ('Timestamp', (12345, 0)), ('NOP', None), ('WScale', 7)])`,
  },
  {
    name: 'TCP with SACK blocks, EOL padding, raw option, all flags, urgent pointer',
    build: () =>
      packet(
        ETH,
        ipv4(V4),
        tcp({
          sport: 80,
          dport: 40000,
          seq: 1,
          ack: 1000,
          flags: ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'],
          urgent: 3,
          window: 512,
          options: [
            { kind: 'nop' },
            { kind: 'nop' },
            {
              kind: 'sack',
              blocks: [
                [1000, 2000],
                [3000, 4000],
              ],
            },
            { kind: 'raw', bytes: [254, 4, 0x12, 0x34] },
            { kind: 'eol' },
          ],
        }),
        payload('urgent!'),
      ),
    scapy: `${SCAPY_ETH}/IP(${SCAPY_V4})/TCP(sport=80, dport=40000, seq=1, ack=1000, flags='FSRPAUEC', urgptr=3, window=512, options=[('NOP', None), ('NOP', None), ('SAck', (1000, 2000, 3000, 4000)), (254, b'\\x12\\x34'), ('EOL', None)])/Raw(b'urgent!')`,
  },
  {
    name: 'UDP whose checksum computes to 0 is sent as 0xffff',
    build: () => packet(ipv4(V4), udp({ sport: 1, dport: 2 }), payload(ZERO_SUM_PAYLOAD)),
    scapy: `IP(${SCAPY_V4})/UDP(sport=1, dport=2)/Raw(bytes.fromhex('${hexOf(ZERO_SUM_PAYLOAD)}'))`,
  },
  {
    name: 'IPv6 hop-by-hop (router alert) + destination options + routing type 0 + UDP',
    build: () =>
      packet(
        ETH,
        ipv6({ ...V6, trafficClass: 0xb8, flowLabel: 0x12345, hopLimit: 3 }),
        hopByHop({ options: [routerAlert(0)] }),
        destOpts({ options: [padN(4)] }),
        routing({ routingType: 0, addresses: ['2001:db8::10', '2001:db8::20'] }),
        udp({ sport: 5000, dport: 53 }),
        payload('q'),
      ),
    scapy: `${SCAPY_ETH}/IPv6(${SCAPY_V6}, tc=0xb8, fl=0x12345, hlim=3)/IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])/IPv6ExtHdrDestOpt(options=[PadN(optdata=b'\\x00' * 4)])/IPv6ExtHdrRouting(addresses=['2001:db8::10', '2001:db8::20'])/UDP(sport=5000, dport=53)/Raw(b'q')`,
  },
  {
    name: 'IPv6 segment routing header (type 4) + TCP: checksum to the first segment',
    build: () =>
      packet(
        ipv6(V6),
        routing({ routingType: 4, addresses: ['2001:db8::a', '2001:db8::b'], segmentsLeft: 1 }),
        tcp({ sport: 1, dport: 2, flags: ['SYN'] }),
      ),
    scapy: `IPv6(${SCAPY_V6})/IPv6ExtHdrSegmentRouting(addresses=['2001:db8::a', '2001:db8::b'], segleft=1)/TCP(sport=1, dport=2, flags='S', window=65535)`,
  },
  {
    name: 'IPv6 routing type 2 + destination options home address + UDP',
    build: () =>
      packet(
        ipv6(V6),
        routing({ routingType: 2, addresses: ['2001:db8::99'] }),
        destOpts({ options: [homeAddress('2001:db8::77')] }),
        udp({ sport: 7, dport: 7 }),
      ),
    scapy: `IPv6(${SCAPY_V6})/IPv6ExtHdrRouting(type=2, addresses=['2001:db8::99'])/IPv6ExtHdrDestOpt(options=[HAO(hoa='2001:db8::77')])/UDP(sport=7, dport=7)`,
  },
  {
    name: 'IPv6 unknown extension header (253) before UDP',
    build: () =>
      packet(
        ipv6(V6),
        ipv6Ext(253, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
        udp({ sport: 9, dport: 9 }),
        payload('x'),
      ),
    scapy: `IPv6(${SCAPY_V6}, nh=253)/Raw(b'\\x11\\x00\\xaa\\xbb\\xcc\\xdd\\xee\\xff' + raw(IPv6(${SCAPY_V6})/UDP(sport=9, dport=9)/Raw(b'x'))[40:])`,
  },
  {
    name: 'ICMP echo request',
    build: () => packet(ETH, ipv4(V4), icmpEcho({ id: 0x1234, seq: 7 }), payload('ping')),
    scapy: `${SCAPY_ETH}/IP(${SCAPY_V4})/ICMP(type=8, id=0x1234, seq=7)/Raw(b'ping')`,
  },
  {
    name: 'ICMP fragmentation needed quoting IPv4 header + 8 bytes of TCP',
    build: () =>
      packet(
        ETH,
        ipv4({ src: '203.0.113.1', dst: V4.src }),
        icmpFragNeeded({ mtu: 1400 }),
        quote(
          ipv4({ ...V4, flags: ['DF'] }),
          tcp({ sport: 40000, dport: 80, flags: ['ACK'], seq: 100, ack: 200 }),
          payload('x'.repeat(1500)),
        ),
      ),
    scapy: `${SCAPY_ETH}/IP(src='203.0.113.1', dst='${V4.src}', id=0)/ICMP(type=3, code=4, nexthopmtu=1400)/Raw(raw(IP(${SCAPY_V4}, flags='DF')/TCP(sport=40000, dport=80, flags='A', seq=100, ack=200, window=65535)/Raw(b'x' * 1500))[:28])`,
  },
  {
    name: 'ICMPv6 packet too big quoting the whole (small) offending packet',
    build: () =>
      packet(
        ETH,
        ipv6({ src: '2001:db8::fe', dst: V6.src }),
        icmpv6PacketTooBig({ mtu: 1280 }),
        quote(ipv6(V6), udp({ sport: 4000, dport: 4001 }), payload('y'.repeat(64))),
      ),
    scapy: `${SCAPY_ETH}/IPv6(src='2001:db8::fe', dst='${V6.src}')/ICMPv6PacketTooBig(mtu=1280)/Raw(raw(IPv6(${SCAPY_V6})/UDP(sport=4000, dport=4001)/Raw(b'y' * 64)))`,
  },
  {
    name: 'ICMPv6 echo request',
    build: () => packet(ipv6(V6), icmpv6Echo({ id: 1, seq: 2 }), payload('abc')),
    scapy: `IPv6(${SCAPY_V6})/ICMPv6EchoRequest(id=1, seq=2, data=b'abc')`,
  },
  {
    name: 'IPv4 fragments of a UDP datagram',
    build: () =>
      fragments(32, ipv4({ ...V4, id: 7 }), udp({ sport: 1, dport: 2 }), payload('z'.repeat(100))),
    scapy: `fragment(IP(src='${V4.src}', dst='${V4.dst}', id=7)/UDP(sport=1, dport=2)/Raw(b'z' * 100), fragsize=32)`,
  },
  {
    name: 'IPv4 first fragment built by hand (slice): checksum over the whole segment',
    build: () =>
      packet(
        ETH,
        ipv4({ ...V4, id: 9, slice: { offset: 0, length: 24 } }),
        tcp({ sport: 5, dport: 6, flags: ['PSH', 'ACK'] }),
        payload('w'.repeat(40)),
      ),
    scapy: `${SCAPY_ETH}/fragment(IP(src='${V4.src}', dst='${V4.dst}', id=9)/TCP(sport=5, dport=6, flags='PA', window=65535)/Raw(b'w' * 40), fragsize=24)[0]`,
  },
  {
    name: 'IPv4 non-first fragment with raw offset and MF',
    build: () =>
      packet(ipv4({ ...V4, protocol: 17, fragOffset: 24, flags: ['MF'] }), payload('f'.repeat(16))),
    scapy: `IP(${SCAPY_V4}, proto=17, frag=3, flags='MF')/Raw(b'f' * 16)`,
  },
  {
    name: 'IPv6 fragments of a UDP datagram',
    build: () =>
      fragments(
        32,
        ipv6(V6),
        frag6({ id: 0x1234 }),
        udp({ sport: 1, dport: 2 }),
        payload('v'.repeat(100)),
      ),
    scapy: `fragment6(IPv6(${SCAPY_V6})/IPv6ExtHdrFragment(id=0x1234)/UDP(sport=1, dport=2)/Raw(b'v' * 100), 80)`,
  },
  {
    name: 'IPIP: IPv4 in IPv4 carrying UDP',
    build: () =>
      packet(
        ETH,
        ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }),
        ipv4(V4),
        udp({ sport: 1, dport: 2 }),
        payload('tunnelled'),
      ),
    scapy: `${SCAPY_ETH}/IP(src='10.0.0.1', dst='10.0.0.2', id=0)/IP(${SCAPY_V4})/UDP(sport=1, dport=2)/Raw(b'tunnelled')`,
  },
  {
    name: 'IPv6 in IPv6 carrying TCP',
    build: () =>
      packet(
        ETH,
        ipv6({ src: 'fd00::1', dst: 'fd00::2' }),
        ipv6(V6),
        tcp({ sport: 1, dport: 2, flags: ['RST'] }),
      ),
    scapy: `${SCAPY_ETH}/IPv6(src='fd00::1', dst='fd00::2')/IPv6(${SCAPY_V6})/TCP(sport=1, dport=2, flags='R', window=65535)`,
  },
  {
    name: 'IPv6 in IPv4 (6in4) carrying ICMPv6 echo reply',
    build: () =>
      packet(ipv4(V4), ipv6(V6), icmpv6Echo({ id: 9, seq: 9, reply: true }), payload('pong')),
    scapy: `IP(${SCAPY_V4})/IPv6(${SCAPY_V6})/ICMPv6EchoReply(id=9, seq=9, data=b'pong')`,
  },
];

/** python3 on PATH may be a pyenv or venv interpreter without Debian's dist-packages. */
const PYTHON_CANDIDATES = [process.env.XLB_PYTHON, 'python3', '/usr/bin/python3'].filter(
  (p): p is string => p !== undefined && p !== '',
);

const SCAPY_SCRIPT = `
import json, sys
from scapy.all import *
out = []
for expr in json.load(sys.stdin):
    value = eval(expr)
    packets = value if isinstance(value, list) else [value]
    out.append([bytes(p).hex() for p in packets])
print(json.dumps(out))
`;

function findScapyPython(): string {
  for (const python of PYTHON_CANDIDATES) {
    try {
      execFileSync(python, ['-c', 'import scapy.all'], { stdio: 'ignore', timeout: 30_000 });
      return python;
    } catch {
      // try the next interpreter
    }
  }
  throw new Error(
    `no python3 with scapy found (tried ${PYTHON_CANDIDATES.join(', ')}): run the project's ` +
      'setup, which installs the Debian package python3-scapy (or set XLB_PYTHON)',
  );
}

let scapyResults: string[][] | undefined;

/** All cases in one interpreter run: importing scapy takes seconds. */
function scapyHex(index: number): string[] {
  scapyResults ??= JSON.parse(
    execFileSync(findScapyPython(), ['-c', SCAPY_SCRIPT], {
      input: JSON.stringify(SCAPY_CASES.map((c) => c.scapy)),
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 60_000,
    }),
  ) as string[][];
  const result = scapyResults[index];
  if (result === undefined) throw new Error(`scapy returned no result for case ${index}`);
  return result;
}

describe('builder matches scapy byte for byte', () => {
  it.each(SCAPY_CASES.map((c, i) => [c.name, i] as const))('%s', (_name, index) => {
    const built = SCAPY_CASES[index]?.build();
    const ours = (Array.isArray(built) ? built : [built]).map((b) => b ?? Buffer.alloc(0));
    const theirs = scapyHex(index).map((h) => Buffer.from(h, 'hex'));
    expect(ours.length).toBe(theirs.length);
    ours.forEach((pkt, i) => {
      const want = theirs[i] ?? Buffer.alloc(0);
      // Cases without Ethernet start with an IP version nibble; our MACs start with 0x02.
      const link = [4, 6].includes((want[0] ?? 0) >> 4) ? 'ip' : 'eth';
      expect(diffPackets(want, pkt, { link }), `fragment ${i}`).toBeUndefined();
    });
  });

  it('has at least 15 cases', () => {
    expect(SCAPY_CASES.length).toBeGreaterThanOrEqual(15);
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-known fixtures: layouts written out from the RFCs, checksums pinned where not the point.

describe('hand-written fixtures', () => {
  it('reproduces the well-known IPv4 header with checksum 0xb861', () => {
    const pkt = packet(
      ipv4({ src: '192.168.0.1', dst: '192.168.0.199', flags: ['DF'], protocol: 17 }),
      payload(Buffer.alloc(95)),
    );
    expect(hexOf(pkt.subarray(0, 20))).toBe(
      h('4 5 00 0073 0000 4000 40 11 b861 c0a80001 c0a800c7'),
    );
  });

  it('lays out Ethernet and an 802.1Q tag with PCP, DEI and VID', () => {
    const pkt = packet(
      ETH,
      vlan({ vid: 100, pcp: 5, dei: true }),
      ipv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 253 }),
    );
    expect(hexOf(pkt.subarray(0, 18))).toBe(h('020000000002 020000000001 8100 b064 0800'));
  });

  it('pads IPv4 options with EOL to 4 bytes and computes the IHL', () => {
    const pkt = packet(
      ipv4({ src: '10.0.0.1', dst: '10.0.0.2', options: [1, 1, 1], protocol: 253, checksum: 0 }),
    );
    expect(hexOf(pkt)).toBe(h('4 6 00 0018 0000 0000 40 fd 0000 0a000001 0a000002 01010100'));
  });

  it('lays out a TCP header with options and a pinned checksum', () => {
    const pkt = packet(
      ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }),
      tcp({
        sport: 0x1234,
        dport: 80,
        seq: 1,
        ack: 2,
        flags: ['SYN', 'ACK'],
        window: 0x7210,
        checksum: 0xbeef,
        options: [
          { kind: 'mss', value: 1460 },
          { kind: 'sackOk' },
          { kind: 'timestamp', value: 1, echo: 2 },
          { kind: 'nop' },
          { kind: 'wscale', shift: 7 },
        ],
      }),
    );
    expect(hexOf(pkt.subarray(20))).toBe(
      h('1234 0050 00000001 00000002 a0 12 7210 beef 0000') +
        h('020405b4 0402 080a 00000001 00000002 01 030307'),
    );
  });

  it('pads TCP options with NOP when asked', () => {
    const pkt = packet(
      tcp({ sport: 1, dport: 2, checksum: 0, pad: 'nop', options: [{ kind: 'wscale', shift: 2 }] }),
    );
    expect(hexOf(pkt.subarray(12, 14))).toBe('6000');
    expect(hexOf(pkt.subarray(20))).toBe('03030201');
  });

  it('lays out UDP and ICMP headers', () => {
    expect(hexOf(packet(udp({ sport: 53, dport: 1024, checksum: 0 }), payload('ab')))).toBe(
      h('0035 0400 000a 0000 6162'),
    );
    expect(hexOf(packet(icmpFragNeeded({ mtu: 1400, checksum: 0 })))).toBe(
      h('03 04 0000 0000 0578'),
    );
    expect(hexOf(packet(icmpEcho({ id: 0x1234, seq: 7, reply: true, checksum: 0 })))).toBe(
      h('00 00 0000 1234 0007'),
    );
    expect(hexOf(packet(icmpv6PacketTooBig({ mtu: 1280, checksum: 0 })))).toBe(
      h('02 00 0000 00000500'),
    );
    expect(hexOf(packet(icmpv6Echo({ id: 1, seq: 2, checksum: 0 })))).toBe(
      h('80 00 0000 0001 0002'),
    );
  });

  it('chains IPv6 extension headers and fills every next-header field', () => {
    const pkt = packet(
      ipv6({ ...V6, dst: '2001:db8::2', trafficClass: 0x12, flowLabel: 0x34567, hopLimit: 9 }),
      hopByHop({ options: [routerAlert(0)] }),
      frag6({ id: 0xdeadbeef, offset: 8, more: true, nextHeader: 17 }),
      payload([1, 2, 3, 4, 5, 6, 7, 8]),
    );
    expect(hexOf(pkt)).toBe(
      h('6 12 34567 0018 00 09') +
        h('20010db8000000000000000000000001 20010db8000000000000000000000002') +
        h('2c 00 0502 0000 0100') + // hop-by-hop: next = fragment, router alert 0, PadN(0)
        h('11 00 0009 deadbeef') + // fragment: next = UDP, offset 8 with M set
        h('0102030405060708'),
    );
  });

  it('lays out a segment routing header and ends the chain with "no next header"', () => {
    const pkt = packet(
      ipv6(V6),
      routing({ routingType: 4, addresses: ['2001:db8::a', '2001:db8::b'] }),
    );
    expect(pkt[6]).toBe(43);
    expect(hexOf(pkt.subarray(40))).toBe(
      h('3b 04 04 01 01 00 0000') +
        h('20010db800000000000000000000000a 20010db800000000000000000000000b'),
    );
  });

  it('encodes an unknown extension header by number, and AH in 4-byte units', () => {
    const unknown = packet(ipv6(V6), ipv6Ext(253, [0, 0, 0, 0, 0, 0]));
    expect(hexOf(unknown.subarray(40))).toBe('3b00000000000000');
    const ah = packet(ipv6(V6), ipv6Ext(51, Buffer.alloc(10)));
    expect(hexOf(ah.subarray(40, 42))).toBe('3b01');
  });

  it('quotes IP header + 8 bytes after ICMP, up to 1232 bytes after ICMPv6, or as told', () => {
    const inner = [
      ipv4({ ...V4, options: [148, 4, 0, 0] }),
      udp({ sport: 1, dport: 2 }),
      payload('p'.repeat(50)),
    ];
    expect(packet(icmp({ type: 11, checksum: 0 }), quote(...inner)).length).toBe(8 + 24 + 8);
    const big = [ipv6(V6), udp({ sport: 1, dport: 2 }), payload(Buffer.alloc(2000))];
    expect(packet(icmpv6({ type: 1, checksum: 0 }), quote(...big)).length).toBe(8 + 1232);
    expect(packet(icmp({ type: 3, checksum: 0 }), quoteFirst(10, ...inner)).length).toBe(18);
  });

  it('keeps the original total length in the quoted header', () => {
    const pkt = packet(
      ipv4({ src: '203.0.113.1', dst: V4.src }),
      icmpFragNeeded({ mtu: 1400 }),
      quote(ipv4(V4), udp({ sport: 1, dport: 2 }), payload(Buffer.alloc(1472))),
    );
    expect(pkt.readUInt16BE(20 + 8 + 2)).toBe(1500);
  });

  it('rejects values that do not fit their field, naming the layer', () => {
    expect(() => packet(ipv4({ ...V4, ttl: 256, protocol: 1 }))).toThrow(/layer 0 \(ipv4\).*ttl/);
    expect(() => packet(eth({ src: 'nope', dst: MAC_B, type: 1 }))).toThrow(/MAC/);
    expect(() => packet(ipv4({ src: '2001:db8::1', dst: V4.dst, protocol: 1 }))).toThrow(/IPv4/);
    expect(() => packet(ipv4({ ...V4, fragOffset: 12, protocol: 1 }))).toThrow(/multiple of 8/);
    expect(() => packet(eth({ src: MAC_A, dst: MAC_B }), payload('x'))).toThrow(/ethertype/);
    expect(() => packet(udp({ sport: 1, dport: 2 }))).toThrow(/enclosing ipv4\/ipv6/);
  });
});

// ---------------------------------------------------------------------------------------------
// Checksums

function zeroingPayload(layers: (extra: Buffer) => Layer[], checksumAt: number): Buffer {
  const probe = packet(...layers(Buffer.from([0, 0])));
  const sum = ~probe.readUInt16BE(checksumAt) & 0xffff;
  const word = 0xffff - sum;
  return Buffer.from([word >> 8, word & 0xff]);
}

describe('checksums', () => {
  it('sums the RFC 1071 example, across odd-length parts too', () => {
    const data = Buffer.from('0001f203f4f5f6f7', 'hex');
    expect(onesComplementSum(data)).toBe(0xddf2);
    expect(internetChecksum(data)).toBe(0x220d);
    expect(onesComplementSum(data.subarray(0, 3), data.subarray(3))).toBe(0xddf2);
  });

  it('builds headers that verify, and badChecksum ones that do not', () => {
    const layers = (bad: boolean): Layer[] => [
      ipv4({ ...V4, badChecksum: bad }),
      udp({ sport: 1, dport: 2, badChecksum: bad }),
      payload('data'),
    ];
    const good = packet(...layers(false));
    const bad = packet(...layers(true));
    expect(checksumVerifies(good.subarray(0, 20))).toBe(true);
    expect(checksumVerifies(bad.subarray(0, 20))).toBe(false);
    const pseudo = (p: Buffer): Buffer =>
      Buffer.concat([p.subarray(12, 20), Buffer.from([0, 17]), p.subarray(24, 26)]);
    expect(checksumVerifies(pseudo(good), good.subarray(20))).toBe(true);
    expect(checksumVerifies(pseudo(bad), bad.subarray(20))).toBe(false);
  });

  const cases: readonly [string, string, (bad: boolean) => Layer[]][] = [
    [
      'ipv4',
      'ipv4.checksum',
      (bad) => [ipv4({ ...V4, badChecksum: bad }), udp({ sport: 1, dport: 2 })],
    ],
    ['tcp', 'tcp.checksum', (bad) => [ipv4(V4), tcp({ sport: 1, dport: 2, badChecksum: bad })]],
    ['udp', 'udp.checksum', (bad) => [ipv6(V6), udp({ sport: 1, dport: 2, badChecksum: bad })]],
    ['icmp', 'icmp.checksum', (bad) => [ipv4(V4), icmpEcho({ id: 1, seq: 1, badChecksum: bad })]],
    [
      'icmpv6',
      'icmpv6.checksum',
      (bad) => [ipv6(V6), icmpv6Echo({ id: 1, seq: 1, badChecksum: bad })],
    ],
  ];

  it.each(cases)('%s: dissector says correct, then WRONG with badChecksum', (_n, path, layers) => {
    const good = notes(dissect(packet(...layers(false)), { link: 'ip' }), '.checksum');
    expect(Object.values(good).every((n) => n === 'correct')).toBe(true);
    const bad = notes(dissect(packet(...layers(true)), { link: 'ip' }), '.checksum');
    expect(bad[path]).toMatch(/^WRONG \(expected 0x[0-9a-f]{4}\)$/);
  });

  it('writes a forced checksum verbatim', () => {
    const pkt = packet(
      ipv4({ ...V4, checksum: 0xabcd }),
      udp({ sport: 1, dport: 2, checksum: 0x1234 }),
    );
    expect(pkt.readUInt16BE(10)).toBe(0xabcd);
    expect(pkt.readUInt16BE(26)).toBe(0x1234);
  });

  it('corrupts to a value that never verifies, even around the two zeros', () => {
    for (const correct of [0x0000, 0x0001, 0xfffe, 0xffff, 0x1234]) {
      const bad = corruptChecksum(correct);
      expect(bad).not.toBe(correct);
      expect(bad).not.toBe(0);
      expect(bad).not.toBe(correct ^ 0xffff);
    }
  });

  it('a TCP checksum that computes to 0 stays 0; a UDP one becomes 0xffff', () => {
    const tcpLayers = (extra: Buffer): Layer[] => [
      ipv4(V4),
      tcp({ sport: 1, dport: 2 }),
      payload(extra),
    ];
    const tcpPkt = packet(...tcpLayers(zeroingPayload(tcpLayers, 36)));
    expect(tcpPkt.readUInt16BE(36)).toBe(0);
    expect(notes(dissect(tcpPkt, { link: 'ip' }), '.checksum')['tcp.checksum']).toBe('correct');
    const udpPkt = packet(ipv4(V4), udp({ sport: 1, dport: 2 }), payload(ZERO_SUM_PAYLOAD));
    expect(udpPkt.readUInt16BE(26)).toBe(0xffff);
    expect(notes(dissect(udpPkt, { link: 'ip' }), '.checksum')['udp.checksum']).toBe('correct');
  });

  it('recognises an IPv4 header checksum computed independently', () => {
    const pkt = packet(ipv4(V4), udp({ sport: 1, dport: 2 }));
    expect(ipv4HeaderChecksum(pkt.subarray(0, 20))).toBe(pkt.readUInt16BE(10));
  });
});

// ---------------------------------------------------------------------------------------------
// Fragments

describe('fragments', () => {
  const layers = [
    ipv4({ ...V4, id: 42 }),
    udp({ sport: 1000, dport: 2000 }),
    payload('r'.repeat(75)),
  ];
  const whole = packet(...layers);

  it('reassembles to the original payload, first fragment carrying the full-datagram checksum', () => {
    const frags = fragments(24, ...layers);
    expect(frags).toHaveLength(4);
    const data = Buffer.concat(frags.map((f) => f.subarray(20)));
    expect(data.equals(whole.subarray(20))).toBe(true);
    const offsets = frags.map((f) => (f.readUInt16BE(6) & 0x1fff) * 8);
    const more = frags.map((f) => (f.readUInt16BE(6) & 0x2000) !== 0);
    expect(offsets).toEqual([0, 24, 48, 72]);
    expect(more).toEqual([true, true, true, false]);
    expect(frags[0]?.readUInt16BE(26)).toBe(whole.readUInt16BE(26));
    expect(notes(dissect(frags[0] ?? whole, { link: 'ip' }), '.checksum')).toEqual({
      'ipv4.checksum': 'correct',
      'udp.checksum': 'unverifiable (fragment)',
    });
  });

  it('repeats only the copied IPv4 options in later fragments (RFC 791)', () => {
    const withOptions = [
      ipv4({ ...V4, options: [7, 7, 4, 0, 0, 0, 0, 148, 4, 0, 0] }),
      udp({ sport: 1, dport: 2 }),
      payload('o'.repeat(30)),
    ];
    const [first, second] = fragments(16, ...withOptions);
    expect((first?.[0] ?? 0) & 0x0f).toBe(8);
    expect((second?.[0] ?? 0) & 0x0f).toBe(6);
    expect(hexOf(second?.subarray(20, 24) ?? Buffer.alloc(0))).toBe('94040000');
  });

  it('inserts the IPv6 fragment header after hop-by-hop and routing headers', () => {
    const frags = fragments(
      16,
      ipv6(V6),
      hopByHop(),
      routing({ routingType: 0, addresses: ['2001:db8::5'], segmentsLeft: 0 }),
      destOpts(),
      udp({ sport: 1, dport: 2 }),
      payload('s'.repeat(40)),
    );
    expect(frags).toHaveLength(4);
    const paths = dissect(frags[0] ?? Buffer.alloc(0), { link: 'ip' }).map((f) => f.path);
    expect(paths).toContain('ipv6.hbh[0].nextHeader');
    expect(paths).toContain('ipv6.routing[1].nextHeader');
    expect(paths).toContain('ipv6.frag[2].id');
    expect(paths).toContain('ipv6.dstopts[3].nextHeader');
    const later = values(dissect(frags[1] ?? Buffer.alloc(0), { link: 'ip' }));
    expect(later['ipv6.frag[2].offset']).toBe(16);
    expect(later['ipv6.frag[2].more']).toBe(true);
  });

  it('builds a single IPv6 fragment by hand with a slice', () => {
    const last = packet(
      ipv6(V6),
      frag6({ id: 5, slice: { offset: 16 } }),
      udp({ sport: 1, dport: 2 }),
      payload('t'.repeat(20)),
    );
    const f = values(dissect(last, { link: 'ip' }));
    expect(f['ipv6.payloadLength']).toBe(8 + 12);
    expect(f['ipv6.frag[0].offset']).toBe(16);
    expect(f['ipv6.frag[0].more']).toBe(false);
  });

  it('rejects sizes that are not multiples of 8', () => {
    expect(() => fragments(20, ...layers)).toThrow(/multiple of 8/);
  });
});

// ---------------------------------------------------------------------------------------------
// Dissector

function coveredBytes(fields: readonly Field[], length: number): number[] {
  const covered = new Set<number>();
  for (const f of fields) for (let i = f.offset; i < f.offset + f.length; i++) covered.add(i);
  return Array.from({ length }, (_, i) => i).filter((i) => !covered.has(i));
}

describe('dissector', () => {
  it('reads back what the builder wrote (Ethernet, QinQ, IPv4 options, TCP options)', () => {
    const pkt = packet(
      ETH,
      vlan({ vid: 10, pcp: 3, tpid: 0x88a8 }),
      vlan({ vid: 20, dei: true }),
      ipv4({ ...V4, ttl: 7, tos: 4, id: 99, flags: ['DF'], options: [148, 4, 0, 0] }),
      tcp({
        sport: 1234,
        dport: 80,
        seq: 5,
        ack: 6,
        flags: ['PSH', 'ACK'],
        window: 1000,
        options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamp', value: 1, echo: 2 }],
      }),
      payload('hi'),
    );
    const fields = dissect(pkt);
    expect(values(fields)).toEqual({
      'eth.dst': MAC_B,
      'eth.src': MAC_A,
      'eth.type': 0x88a8,
      'vlan[0].pcp': 3,
      'vlan[0].dei': false,
      'vlan[0].vid': 10,
      'vlan[0].type': 0x8100,
      'vlan[1].pcp': 0,
      'vlan[1].dei': true,
      'vlan[1].vid': 20,
      'vlan[1].type': 0x0800,
      'ipv4.version': 4,
      'ipv4.ihl': 6,
      'ipv4.tos': 4,
      'ipv4.totalLength': 24 + 32 + 2,
      'ipv4.id': 99,
      'ipv4.flags': 'DF',
      'ipv4.fragOffset': 0,
      'ipv4.ttl': 7,
      'ipv4.protocol': 6,
      'ipv4.checksum': pkt.readUInt16BE(22 + 10),
      'ipv4.src': V4.src,
      'ipv4.dst': V4.dst,
      'ipv4.opt[0]': 'router-alert data=0000',
      'tcp.sport': 1234,
      'tcp.dport': 80,
      'tcp.seq': 5,
      'tcp.ack': 6,
      'tcp.dataOffset': 8,
      'tcp.reserved': 0,
      'tcp.flags': 'PSH|ACK',
      'tcp.window': 1000,
      'tcp.checksum': pkt.readUInt16BE(22 + 24 + 16),
      'tcp.urgent': 0,
      'tcp.opt[0]': 'nop',
      'tcp.opt[1]': 'nop',
      'tcp.opt[2]': 'timestamp 1 2',
      payload: hexOf(Buffer.from('hi')),
    });
    expect(notes(fields, '.checksum')).toEqual({
      'ipv4.checksum': 'correct',
      'tcp.checksum': 'correct',
    });
  });

  it('reads IPv6 extension headers, routing addresses and options', () => {
    const fields = values(
      dissect(
        packet(
          ipv6(V6),
          hopByHop({ options: [routerAlert(2)] }),
          routing({ routingType: 0, addresses: ['2001:db8::10', '2001:db8::20'] }),
          destOpts({ options: [homeAddress('2001:db8::77')] }),
          udp({ sport: 1, dport: 2 }),
        ),
        { link: 'ip' },
      ),
    );
    expect(fields).toMatchObject({
      'ipv6.nextHeader': 0,
      'ipv6.hbh[0].nextHeader': 43,
      'ipv6.hbh[0].opt[0]': 'router-alert 2',
      'ipv6.hbh[0].opt[1]': 'padn 0',
      'ipv6.routing[1].routingType': 0,
      'ipv6.routing[1].segmentsLeft': 2,
      'ipv6.routing[1].addr[0]': '2001:db8::10',
      'ipv6.routing[1].addr[1]': '2001:db8::20',
      'ipv6.dstopts[2].opt[0]': 'padn 2',
      'ipv6.dstopts[2].opt[1]': 'home-address 2001:db8::77',
      'udp.dport': 2,
    });
  });

  it('dissects ICMP-quoted packets under icmp.inner / icmpv6.inner', () => {
    const v4 = values(dissect(SCAPY_CASES[12]?.build() as Buffer));
    expect(v4).toMatchObject({
      'icmp.type': 3,
      'icmp.code': 4,
      'icmp.mtu': 1400,
      'icmp.inner.ipv4.src': V4.src,
      'icmp.inner.ipv4.totalLength': 40 + 1500,
      'icmp.inner.tcp.sport': 40000,
      'icmp.inner.tcp.seq': 100,
    });
    expect(v4['icmp.inner.truncated']).toMatch(/tcp.ack needs 4 bytes/);
    const v6 = values(dissect(SCAPY_CASES[13]?.build() as Buffer));
    expect(v6).toMatchObject({
      'icmpv6.type': 2,
      'icmpv6.mtu': 1280,
      'icmpv6.inner.ipv6.dst': V6.dst,
      'icmpv6.inner.udp.dport': 4001,
      'icmpv6.inner.payload': hexOf(Buffer.from('y'.repeat(64))),
    });
  });

  it('dissects IPIP and IPv6-in-IPv6 under inner.', () => {
    expect(values(dissect(SCAPY_CASES[19]?.build() as Buffer))).toMatchObject({
      'ipv4.protocol': 4,
      'inner.ipv4.src': V4.src,
      'inner.udp.sport': 1,
      'inner.payload': hexOf(Buffer.from('tunnelled')),
    });
    expect(values(dissect(SCAPY_CASES[20]?.build() as Buffer))).toMatchObject({
      'ipv6.nextHeader': 41,
      'inner.ipv6.dst': V6.dst,
      'inner.tcp.flags': 'RST',
    });
  });

  it.each(SCAPY_CASES.map((c) => [c.name, c] as const))(
    'explains every byte of, with only good checksums: %s',
    (_name, c) => {
      const built = c.build();
      for (const pkt of Array.isArray(built) ? built : [built]) {
        const link = [4, 6].includes((pkt[0] ?? 0) >> 4) ? 'ip' : 'eth';
        const fields = dissect(pkt, { link });
        const listing = formatFields(fields);
        expect(coveredBytes(fields, pkt.length), listing).toEqual([]);
        expect(
          fields.filter((f) => /(^|\.)error$/.test(f.path)),
          listing,
        ).toEqual([]);
        for (const note of Object.values(notes(fields, '.checksum'))) {
          expect(note, listing).toMatch(/^(correct|unverifiable \((fragment|truncated)\))$/);
        }
      }
    },
  );

  it('shows bytes after the IP packet (Ethernet padding) as a trailer', () => {
    const frame = packet(ETH, ipv4(V4), udp({ sport: 1, dport: 2 }));
    const padded = Buffer.concat([frame, Buffer.alloc(60 - frame.length)]);
    const fields = dissect(padded);
    expect(values(fields).trailer).toBe('00'.repeat(60 - frame.length));
    expect(notes(fields, '.checksum')).toEqual({
      'ipv4.checksum': 'correct',
      'udp.checksum': 'correct',
    });
  });

  it('reports a truncated packet with what it could parse', () => {
    const pkt = packet(ETH, ipv4(V4), tcp({ sport: 1, dport: 2 }));
    const fields = dissect(pkt.subarray(0, 14 + 20 + 5));
    const v = values(fields);
    expect(v['tcp.sport']).toBe(1);
    expect(v['tcp.seq']).toBeUndefined();
    expect(v.truncated).toMatch(/tcp.seq needs 4 bytes at offset 38, 1 left/);
    expect(notes(fields, '.totalLength')['ipv4.totalLength']).toMatch(/exceeds/);
  });

  it('flags malformed headers instead of guessing', () => {
    const badIhl = packet(ipv4({ ...V4, ihl: 3, protocol: 6 }), payload(Buffer.alloc(8)));
    expect(values(dissect(badIhl, { link: 'ip' })).error).toMatch(/ihl 3/);
    const notIp = dissect(Buffer.from('00112233', 'hex'), { link: 'ip' });
    expect(values(notIp).error).toMatch(/not an IP packet/);
  });

  it('never throws on 2,000 random, truncated and bit-flipped buffers', () => {
    const random = mulberry32(0x5eed);
    const seeds = SCAPY_CASES.flatMap((c) => {
      const built = c.build();
      return Array.isArray(built) ? built : [built];
    });
    for (let i = 0; i < 2000; i++) {
      const buf = fuzzBuffer(random, seeds, i);
      for (const link of ['eth', 'ip'] as const) {
        const fields = dissect(buf, { link });
        const failures = fields.filter((f) => String(f.value).startsWith('dissector failed'));
        expect(failures, `buffer ${i} (${link}): ${hexOf(buf)}`).toEqual([]);
        for (const f of fields) {
          expect(f.offset + f.length, f.path).toBeLessThanOrEqual(buf.length);
        }
      }
    }
  });
});

/** Small seeded PRNG so the fuzz cases are the same on every run. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fuzzBuffer(random: () => number, seeds: readonly Buffer[], i: number): Buffer {
  const int = (n: number): number => Math.floor(random() * n);
  const seed = seeds[int(seeds.length)] ?? Buffer.alloc(0);
  switch (i % 3) {
    case 0:
      return Buffer.from(Array.from({ length: int(200) }, () => int(256)));
    case 1:
      return seed.subarray(0, int(seed.length + 1));
    default: {
      const copy = Buffer.from(seed);
      for (let k = 0; k < 1 + int(4); k++) {
        const at = int(copy.length);
        copy[at] = (copy[at] ?? 0) ^ (1 << int(8));
      }
      return copy;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// diffPackets

describe('diffPackets', () => {
  const build = (ttl: number, extra = ''): Buffer =>
    packet(ETH, ipv4({ ...V4, ttl }), udp({ sport: 1, dport: 2 }), payload(`data${extra}`));

  it('returns undefined for identical packets', () => {
    expect(diffPackets(build(64), build(64))).toBeUndefined();
  });

  it('names the TTL and the checksum that follows it', () => {
    const diff = diffPackets(build(64), build(63)) ?? '';
    expect(diff).toMatch(/^ {2}ipv4\.ttl: expected 64 \(0x40\), actual 63 \(0x3f\)$/m);
    expect(diff).toMatch(/^ {2}ipv4\.checksum: expected .*\[correct\], actual .*\[correct\]$/m);
    expect(diff).not.toMatch(/udp\./);
    expect(diff).toMatch(/\^\^/);
  });

  it('shows a stale checksum as WRONG even when its value did not change', () => {
    const want = build(64);
    const got = Buffer.from(want);
    got[14 + 8] = 63;
    const diff = diffPackets(want, got) ?? '';
    expect(diff).toMatch(/ipv4\.checksum: expected .*\[correct\], actual .*\[WRONG \(expected/);
  });

  it('reports length differences and the fields that moved', () => {
    const diff = diffPackets(build(64), build(64, '!!')) ?? '';
    expect(diff).toMatch(/length: expected 46, actual 48/);
    expect(diff).toMatch(/ipv4\.totalLength: expected 32/);
    expect(diff).toMatch(/udp\.length: expected 12 \(0xc\), actual 14 \(0xe\)/);
    expect(diff).toMatch(/payload: expected 64617461, actual 646174612121/);
  });

  it('diffs raw IP packets when told the link type', () => {
    const a = packet(ipv6(V6), udp({ sport: 1, dport: 2 }));
    const b = packet(ipv6({ ...V6, hopLimit: 1 }), udp({ sport: 1, dport: 2 }));
    expect(diffPackets(a, b, { link: 'ip' })).toMatch(
      /ipv6\.hopLimit: expected 64 \(0x40\), actual 1/,
    );
  });
});
