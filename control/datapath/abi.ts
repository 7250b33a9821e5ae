// TypeScript mirror of bpf/include/xlb_abi.h. Change both together; the ABI
// test compares every struct and enum here with the compiled objects' BTF.
import { be16, bytes, cEnum, ipv4, ipv6, pad, struct, u32, u64, u8, u16 } from './codec.js';

export const ABI_VERSION = 4;

export const XlbFamily = cEnum('xlb_family', 'XLB_FAMILY_', { IPV4: 4, IPV6: 6 });

/** 16 address bytes as in the ABI: IPv4 in the first 4, the rest zero. */
export const addr16 = bytes(16);

export const XlbVipKey = struct('xlb_vip_key', { addr: addr16, family: u8, _pad0: pad(3) });
export const XlbVip = struct('xlb_vip', { frontends: u32 });

export const XlbFrontendKey = struct('xlb_frontend_key', {
  addr: addr16,
  port_be: be16,
  proto: u8,
  family: u8,
});

export const XlbServiceFlag = cEnum('xlb_service_flag', 'XLB_SERVICE_F_', {
  SOURCE_RANGES: 1,
  AFFINITY: 2,
});

export const XlbService = struct('xlb_service', {
  id: u32,
  flags: u32,
  affinity_timeout_s: u32,
  _pad0: pad(4),
});

/** An element of a Maglev inner table; see xlb_abi.h for the double-buffered layout. */
export const XlbMaglevEntry = struct('xlb_maglev_entry', { word0: u32, word1: u32 });

export const XlbBackendState = cEnum('xlb_backend_state', 'XLB_BACKEND_', {
  GONE: 0,
  ACTIVE: 1,
  TERMINATING: 2,
});

export const XlbBackendFlag = cEnum('xlb_backend_flag', 'XLB_BACKEND_F_', { LOCAL: 1 });

export const XlbBackend = struct('xlb_backend', {
  addr: addr16,
  node_addr: addr16,
  port_be: be16,
  family: u8,
  state: u8,
  flags: u8,
  _pad0: pad(3),
});

export const XlbFlowKey = struct('xlb_flow_key', {
  src: addr16,
  dst: addr16,
  sport_be: be16,
  dport_be: be16,
  proto: u8,
  family: u8,
  _pad0: pad(2),
});

export const XlbFlow = struct('xlb_flow', { backend_id: u32, service_id: u32, last_seen_ns: u64 });

export const XlbCachedFlow = struct('xlb_cached_flow', {
  key: XlbFlowKey,
  backend_id: u32,
  service_id: u32,
  hash: u32,
  generation: u32,
  checked_jiffies: u32,
  lifetime_jiffies: u32,
});

export const XlbReverseNat = struct('xlb_reverse_nat', {
  vip: addr16,
  port_be: be16,
  family: u8,
  _pad0: pad(1),
  service_id: u32,
});

export const XlbLpmKey = struct('xlb_lpm_key', {
  prefixlen: u32,
  service_id: u32,
  family: u8,
  _pad0: pad(3),
  addr: addr16,
});

export const XlbLbCounters = struct('xlb_lb_counters', {
  packets: u64,
  bytes: u64,
  new_flows: u64,
});

export const XlbCounter = struct('xlb_counter', { packets: u64, bytes: u64 });

export const XlbDrop = cEnum('xlb_drop', 'XLB_DROP_', {
  MALFORMED: 0,
  FRAGMENT: 1,
  IPV6_EXTENSION: 2,
  TTL_EXPIRED: 3,
  UNSUPPORTED_PROTO: 4,
  NO_FRONTEND: 5,
  SOURCE_RANGE: 6,
  NO_BACKEND: 7,
  TOO_BIG: 8,
  FIB: 9,
  DECAP_NOT_LOCAL: 10,
  DECAP_NOT_VIP: 11,
  ICMP_UNMATCHED: 12,
  HEADROOM: 13,
  _COUNT: 14,
});

export const XlbOutcome = cEnum('xlb_outcome', 'XLB_OUT_', {
  PASS_NOT_IP: 0,
  PASS_NOT_VIP: 1,
  PASS_UNPARSED: 2,
  LOCAL: 3,
  ENCAP_TX: 4,
  ENCAP_REDIRECT: 5,
  ENCAP_KERNEL: 6,
  ICMP_TOO_BIG: 7,
  ICMP_LOCAL: 8,
  _COUNT: 9,
});

export const XlbEvent = cEnum('xlb_event', 'XLB_EV_', {
  CONNTRACK_HIT: 0,
  CONNTRACK_MISS: 1,
  AFFINITY_HIT: 2,
  AFFINITY_EXPIRED: 3,
  BACKEND_GONE: 4,
  DECAPSULATED: 5,
  IPV4_OPTIONS: 6,
  ICMP_ENCAP: 7,
  TC_REVERSE_NAT: 8,
  FLOW_CACHE_HIT: 9,
  _COUNT: 10,
});

export const XlbConfigFlag = cEnum('xlb_config_flag', 'XLB_CONFIG_F_', {
  DECAP: 1,
  ICMP_TOO_BIG: 2,
});

export const XlbConfig = struct('xlb_config', {
  abi_version: u32,
  hash_seed: u32,
  mtu: u16,
  flags: u8,
  _pad0: pad(1),
  node_ipv4_be: ipv4,
  node_ipv6: ipv6,
  hz: u32,
  flow_cache_size: u32,
});

/** Every struct and enum of the ABI, for the BTF check and for tooling. */
export const abiStructs = [
  XlbVipKey,
  XlbVip,
  XlbFrontendKey,
  XlbService,
  XlbMaglevEntry,
  XlbBackend,
  XlbFlowKey,
  XlbFlow,
  XlbCachedFlow,
  XlbReverseNat,
  XlbLpmKey,
  XlbLbCounters,
  XlbCounter,
  XlbConfig,
] as const;
export const abiEnums = [
  XlbFamily,
  XlbServiceFlag,
  XlbBackendState,
  XlbBackendFlag,
  XlbDrop,
  XlbOutcome,
  XlbEvent,
  XlbConfigFlag,
] as const;

/** Counter slot names of an enum, without the _COUNT sentinel. */
export type SlotName<E> = E extends { values: Record<infer N, number> }
  ? Exclude<N, '_COUNT'>
  : never;
export type DropName = SlotName<typeof XlbDrop>;
export type OutcomeName = SlotName<typeof XlbOutcome>;
export type EventName = SlotName<typeof XlbEvent>;
