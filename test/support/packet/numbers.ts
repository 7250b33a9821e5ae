// Protocol numbers shared by the builder and the dissector.

export const ETHERTYPE = {
  IPV4: 0x0800,
  IPV6: 0x86dd,
  VLAN: 0x8100,
  QINQ: 0x88a8,
  /** Pre-standard QinQ TPID still seen on some switches. */
  QINQ_LEGACY: 0x9100,
} as const;

export const VLAN_TPIDS: ReadonlySet<number> = new Set([
  ETHERTYPE.VLAN,
  ETHERTYPE.QINQ,
  ETHERTYPE.QINQ_LEGACY,
]);

export const IPPROTO = {
  HOPOPTS: 0,
  ICMP: 1,
  IPIP: 4,
  TCP: 6,
  UDP: 17,
  IPV6: 41,
  ROUTING: 43,
  FRAGMENT: 44,
  AH: 51,
  ICMPV6: 58,
  NONE: 59,
  DSTOPTS: 60,
} as const;

/**
 * Next-header values that introduce an IPv6 extension header (IANA "IPv6 Extension Header
 * Types"), all in the generic next-header/length layout, with the short names the dissector
 * uses in field paths. ESP is absent: its payload is encrypted, so nothing after it parses.
 */
export const IPV6_EXT_NAMES: ReadonlyMap<number, string> = new Map([
  [IPPROTO.HOPOPTS, 'hbh'],
  [IPPROTO.ROUTING, 'routing'],
  [IPPROTO.FRAGMENT, 'frag'],
  [IPPROTO.AH, 'ah'],
  [IPPROTO.DSTOPTS, 'dstopts'],
  [135, 'mobility'],
  [139, 'hip'],
  [140, 'shim6'],
  [253, 'exp253'],
  [254, 'exp254'],
]);

export const IP_PROTOCOL_NAMES: ReadonlyMap<number, string> = new Map([
  ...IPV6_EXT_NAMES,
  [IPPROTO.ICMP, 'icmp'],
  [IPPROTO.IPIP, 'ipv4'],
  [IPPROTO.TCP, 'tcp'],
  [IPPROTO.UDP, 'udp'],
  [IPPROTO.IPV6, 'ipv6'],
  [50, 'esp'],
  [IPPROTO.ICMPV6, 'icmpv6'],
  [IPPROTO.NONE, 'none'],
]);

export const ETHERTYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [ETHERTYPE.IPV4, 'ipv4'],
  [ETHERTYPE.IPV6, 'ipv6'],
  [ETHERTYPE.VLAN, '802.1q'],
  [ETHERTYPE.QINQ, '802.1ad'],
  [ETHERTYPE.QINQ_LEGACY, 'qinq-9100'],
  [0x0806, 'arp'],
]);

export const TCP_FLAG_BITS = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

export type TcpFlag = keyof typeof TCP_FLAG_BITS;

export const IPV4_FLAG_BITS = { RF: 0x8000, DF: 0x4000, MF: 0x2000 } as const;

export type IPv4Flag = keyof typeof IPV4_FLAG_BITS;

/** ICMP types whose body quotes the offending datagram (RFC 792). */
export const ICMP_ERROR_TYPES: ReadonlySet<number> = new Set([3, 4, 5, 11, 12]);

/** ICMPv6 error types (RFC 4443): all quote the offending packet. */
export const ICMPV6_ERROR_TYPES: ReadonlySet<number> = new Set([1, 2, 3, 4]);
