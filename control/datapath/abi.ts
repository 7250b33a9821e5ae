// TypeScript mirror of bpf/include/xlb_abi.h. Change both together; the ABI
// test compares every struct and enum here with the compiled objects' BTF.
import { cEnum, ipv4, ipv6, pad, struct, u16, u32, u64, u8 } from './codec.js';

export const ABI_VERSION = 1;

export const XlbCounter = struct('xlb_counter', {
  packets: u64,
  bytes: u64,
});

export const XlbStat = cEnum('xlb_stat', 'XLB_STAT_', {
  IPV4_TCP: 0,
  IPV4_UDP: 1,
  IPV4_ICMP: 2,
  IPV4_OTHER: 3,
  IPV6_TCP: 4,
  IPV6_UDP: 5,
  IPV6_ICMP: 6,
  IPV6_OTHER: 7,
  NON_IP: 8,
  MALFORMED: 9,
  _COUNT: 10,
});
export type XlbStatName = Exclude<keyof typeof XlbStat.values, '_COUNT'>;

export const XlbConfigFlag = cEnum('xlb_config_flag', 'XLB_CONFIG_F_', {
  NONE: 0,
});

export const XlbConfig = struct('xlb_config', {
  abi_version: u32,
  hash_seed: u32,
  mtu: u16,
  flags: u8,
  _pad0: pad(1),
  node_ipv4_be: ipv4,
  node_ipv6: ipv6,
});

/** Every struct and enum of the ABI, for the BTF check and for tooling. */
export const abiStructs = [XlbCounter, XlbConfig] as const;
export const abiEnums = [XlbStat, XlbConfigFlag] as const;
