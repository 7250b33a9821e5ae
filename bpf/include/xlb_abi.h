/* The datapath ABI: every struct and enum that both the BPF programs and the
 * TypeScript control plane read or write. Nothing else may define a layout
 * that crosses that line. control/datapath/abi.ts mirrors this file, and a
 * test compares the two through the compiled objects' BTF, so any drift in a
 * size or field offset fails the build instead of corrupting a map.
 *
 * Rules: fixed-width types only; explicit padding fields (named _pad*) so the
 * layout never depends on the compiler; network byte order only where the
 * field name says so (_be suffix).
 */
#ifndef XLB_ABI_H
#define XLB_ABI_H

#include <linux/types.h>

#define XLB_ABI_VERSION 1

/* One packet-and-byte counter. Kept per CPU, summed by the control plane. */
struct xlb_counter {
  __u64 packets;
  __u64 bytes;
};

/* Slots of the xlb_stats per-CPU array: one name per meaning, never reused.
 * Append only; the control plane reads names from BTF. */
enum xlb_stat {
  XLB_STAT_IPV4_TCP = 0,
  XLB_STAT_IPV4_UDP = 1,
  XLB_STAT_IPV4_ICMP = 2,
  XLB_STAT_IPV4_OTHER = 3,
  XLB_STAT_IPV6_TCP = 4,
  XLB_STAT_IPV6_UDP = 5,
  XLB_STAT_IPV6_ICMP = 6,
  XLB_STAT_IPV6_OTHER = 7,
  XLB_STAT_NON_IP = 8,
  XLB_STAT_MALFORMED = 9,
  XLB_STAT__COUNT = 10,
};

/* Feature switches in xlb_config.flags. */
enum xlb_config_flag {
  XLB_CONFIG_F_NONE = 0,
};

/* Load-time settings: the program sees them as the read-only global
 * `xlb_config`, so the verifier prunes switched-off paths. */
struct xlb_config {
  __u32 abi_version;
  __u32 hash_seed;
  __u16 mtu;
  __u8 flags;
  __u8 _pad0;
  __be32 node_ipv4_be;
  __u8 node_ipv6[16];
};

/* BTF describes only the types a program references. Every entry file places
 * this read-only anchor, which references every struct and enum above, so each
 * compiled object carries the whole ABI and the control plane's mirror can be
 * checked against any of them. Add each new ABI type here. */
struct xlb_abi_anchor {
  enum xlb_stat stat;
  enum xlb_config_flag config_flag;
  struct xlb_counter counter;
  struct xlb_config config;
};
#define XLB_ABI_ANCHOR const volatile struct xlb_abi_anchor xlb_abi_anchor = {}

#endif /* XLB_ABI_H */
