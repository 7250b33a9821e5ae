/* The datapath ABI: every struct and enum that both the BPF programs and the
 * TypeScript control plane read or write. Nothing else may define a layout
 * that crosses that line. control/datapath/abi.ts mirrors this file, and a
 * test compares the two through the compiled objects' BTF, so any drift in a
 * size or field offset fails the build instead of corrupting a map.
 *
 * Rules: fixed-width types only; explicit padding fields (named _pad*) so the
 * layout never depends on the compiler; network byte order only where the
 * field name says so (_be suffix). Addresses are 16 bytes for both families:
 * an IPv4 address fills the first 4 bytes, the rest are zero.
 */
#ifndef XLB_ABI_H
#define XLB_ABI_H

#include <linux/types.h>

#define XLB_ABI_VERSION 4

/* Values of every `family` field. */
enum xlb_family {
  XLB_FAMILY_IPV4 = 4,
  XLB_FAMILY_IPV6 = 6,
};

/* xlb_vips key: an address that is some Service's VIP. Traffic to it never
 * reaches the host unbalanced: a port no frontend serves is dropped. */
struct xlb_vip_key {
  __u8 addr[16];
  __u8 family;
  __u8 _pad0[3];
};

struct xlb_vip {
  __u32 frontends; /* how many frontends use this VIP (informational) */
};

/* xlb_frontends key: VIP x port x protocol. */
struct xlb_frontend_key {
  __u8 addr[16];
  __be16 port_be;
  __u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
  __u8 family;
};

enum xlb_service_flag {
  XLB_SERVICE_F_SOURCE_RANGES = 1, /* only sources in xlb_source_ranges may connect */
  XLB_SERVICE_F_AFFINITY = 2,      /* sessionAffinity ClientIP */
};

/* xlb_frontends value. id indexes xlb_maglev, xlb_service_stats and the
 * service part of xlb_source_ranges keys. */
struct xlb_service {
  __u32 id;
  __u32 flags; /* enum xlb_service_flag */
  __u32 affinity_timeout_s;
  __u32 _pad0;
};

/* An element of a service's Maglev table (an inner map of xlb_maglev). The
 * table is double-buffered: element 0 is the header, word0 = M and bit 0 of
 * word1 the half in use (the control plane keeps its trailer's length in the
 * other bits, so both flip together); element 1 + i holds slot i of both halves,
 * word0 in half 0 and word1 in half 1. The control plane writes a new table
 * into the half not in use and then flips the header's word1: one aligned
 * 4-byte store swaps the whole table, where replacing the inner map would
 * make the update wait for an RCU grace period. Elements after 1 + M hold
 * the control plane's trailer (same two halves); the datapath never reads
 * them. */
struct xlb_maglev_entry {
  __u32 word0;
  __u32 word1;
};

enum xlb_backend_state {
  XLB_BACKEND_GONE = 0,        /* an empty slot: flows pinned to it are balanced afresh */
  XLB_BACKEND_ACTIVE = 1,      /* in the service's Maglev table */
  XLB_BACKEND_TERMINATING = 2, /* out of the table; established flows drain */
};

enum xlb_backend_flag {
  XLB_BACKEND_F_LOCAL = 1, /* the pod runs on this node: DNAT, no encapsulation */
};

/* xlb_backends value, indexed by backend id. A zeroed slot is a gone backend. */
struct xlb_backend {
  __u8 addr[16];      /* the pod */
  __u8 node_addr[16]; /* the node that runs it: outer destination when remote */
  __be16 port_be;     /* target port */
  __u8 family;
  __u8 state; /* enum xlb_backend_state */
  __u8 flags; /* enum xlb_backend_flag */
  __u8 _pad0[3];
};

/* One direction of a TCP or UDP flow. Key of xlb_conntrack (client -> VIP)
 * and of xlb_reverse (pod -> client). Also the input of the flow hash. */
struct xlb_flow_key {
  __u8 src[16];
  __u8 dst[16];
  __be16 sport_be;
  __be16 dport_be;
  __u8 proto;
  __u8 family;
  __u8 _pad0[2];
};

/* xlb_conntrack value: which backend a flow (or, with session affinity, a
 * client) is pinned to. */
struct xlb_flow {
  __u32 backend_id;
  __u32 service_id;
  __u64 last_seen_ns; /* refreshed at most about once a second */
};

/* xlb_flow_cache value (per CPU, direct-mapped by a hash of the key): the
 * verdict the full path reached for a flow, reused for up to a second while
 * the cache generation and the backend's state allow. A hit costs no hash
 * map lookup, which is what a connection-table hit otherwise spends most of
 * its time on. */
struct xlb_cached_flow {
  struct xlb_flow_key key;
  __u32 backend_id;
  __u32 service_id;
  __u32 hash;             /* the flow hash (outer IPv6 flow label) */
  __u32 generation;       /* xlb_flow_cache_gen when it was filled */
  __u32 checked_jiffies;  /* when the full path last confirmed it (low 32 bits) */
  __u32 lifetime_jiffies; /* a second, or less with a short session affinity timeout */
};

/* xlb_reverse value: what a pod's reply has as source after tc egress. */
struct xlb_reverse_nat {
  __u8 vip[16];
  __be16 port_be;
  __u8 family;
  __u8 _pad0;
  __u32 service_id;
};

/* xlb_source_ranges key (LPM trie). The first 64 bits (service id, family and
 * padding) are always in the prefix, so one trie serves every service:
 * prefixlen = 64 + the range's prefix length. */
struct xlb_lpm_key {
  __u32 prefixlen;
  __u32 service_id;
  __u8 family;
  __u8 _pad0[3];
  __u8 addr[16];
};

/* Per CPU, per service (xlb_service_stats) and per backend
 * (xlb_backend_stats). */
struct xlb_lb_counters {
  __u64 packets;
  __u64 bytes;
  __u64 new_flows;
};

/* One packet-and-byte counter, kept per CPU. */
struct xlb_counter {
  __u64 packets;
  __u64 bytes;
};

/* Why the XDP program dropped a packet: one xlb_drops slot each. Every drop
 * has exactly one reason. Append only. */
enum xlb_drop {
  XLB_DROP_MALFORMED = 0,         /* truncated or inconsistent header of VIP traffic */
  XLB_DROP_FRAGMENT = 1,          /* IP fragment to a VIP: no ports to balance on */
  XLB_DROP_IPV6_EXTENSION = 2,    /* unknown IPv6 extension header, or routing with segments left */
  XLB_DROP_TTL_EXPIRED = 3,       /* TTL / hop limit of at most 1 */
  XLB_DROP_UNSUPPORTED_PROTO = 4, /* neither TCP, UDP nor an ICMP error we forward */
  XLB_DROP_NO_FRONTEND = 5,       /* known VIP, but no service on that port and protocol */
  XLB_DROP_SOURCE_RANGE = 6,      /* source outside loadBalancerSourceRanges */
  XLB_DROP_NO_BACKEND = 7,        /* the service has no table or no backend in the slot */
  XLB_DROP_TOO_BIG = 8,           /* encapsulation would exceed the MTU and DF is clear */
  XLB_DROP_FIB = 9,               /* no route to the backend's node */
  XLB_DROP_DECAP_NOT_LOCAL = 10,  /* decapsulated flow balances to a pod not on this node */
  XLB_DROP_DECAP_NOT_VIP = 11,    /* decapsulated packet is not for a VIP */
  XLB_DROP_ICMP_UNMATCHED = 12,   /* ICMP error quoting a packet that is not from a frontend */
  XLB_DROP_HEADROOM = 13,         /* the driver gave no room to grow or shrink the frame */
  XLB_DROP__COUNT = 14,
};

/* What became of every packet that was not dropped: one xlb_outcomes slot
 * each. Drops plus outcomes count every packet exactly once. Append only. */
enum xlb_outcome {
  XLB_OUT_PASS_NOT_IP = 0,    /* not IPv4 or IPv6: handed to the kernel untouched */
  XLB_OUT_PASS_NOT_VIP = 1,   /* IP, not for a VIP: handed to the kernel untouched */
  XLB_OUT_PASS_UNPARSED = 2,  /* IP header unreadable: handed to the kernel, which drops it */
  XLB_OUT_LOCAL = 3,          /* DNAT to a pod on this node, handed to the kernel */
  XLB_OUT_ENCAP_TX = 4,       /* encapsulated to the backend's node, sent back out */
  XLB_OUT_ENCAP_REDIRECT = 5, /* encapsulated, redirected to another interface */
  XLB_OUT_ENCAP_KERNEL = 6,   /* encapsulated, next hop unresolved: the kernel forwards it */
  XLB_OUT_ICMP_TOO_BIG = 7,   /* answered with fragmentation-needed / packet-too-big */
  XLB_OUT_ICMP_LOCAL = 8,     /* ICMP error rewritten for a pod on this node */
  XLB_OUT__COUNT = 9,
};

/* Things worth counting that are not a packet's fate (a packet may count in
 * several). Append only. */
enum xlb_event {
  XLB_EV_CONNTRACK_HIT = 0,
  XLB_EV_CONNTRACK_MISS = 1,
  XLB_EV_AFFINITY_HIT = 2,
  XLB_EV_AFFINITY_EXPIRED = 3,
  XLB_EV_BACKEND_GONE = 4, /* a pinned flow's backend was removed: balanced afresh */
  XLB_EV_DECAPSULATED = 5,
  XLB_EV_IPV4_OPTIONS = 6,   /* VIP traffic with IPv4 options (balanced as usual) */
  XLB_EV_ICMP_ENCAP = 7,     /* ICMP error sent on to the backend's node */
  XLB_EV_TC_REVERSE_NAT = 8, /* tc egress rewrote a reply's source to VIP:port */
  XLB_EV_FLOW_CACHE_HIT = 9, /* the flow's verdict came from this CPU's flow cache */
  XLB_EV__COUNT = 10,
};

/* Feature switches in xlb_config.flags. */
enum xlb_config_flag {
  XLB_CONFIG_F_DECAP = 1,        /* decapsulate IPIP / IPv6-in-IPv6 addressed to this node */
  XLB_CONFIG_F_ICMP_TOO_BIG = 2, /* answer oversize DF packets instead of dropping them */
};

/* Load-time settings: the programs see them as the read-only global
 * `xlb_config`, so the verifier prunes switched-off paths. */
struct xlb_config {
  __u32 abi_version;
  __u32 hash_seed; /* same on every node, so every node picks the same backend */
  __u16 mtu;       /* of the uplink: encapsulated packets must fit */
  __u8 flags;      /* enum xlb_config_flag */
  __u8 _pad0;
  __be32 node_ipv4_be; /* outer source of IPIP, and what decapsulation answers to */
  __u8 node_ipv6[16];
  __u32 hz; /* jiffies per second (CONFIG_HZ): the flow cache and next hops age in jiffies */
  __u32 flow_cache_size; /* slots of xlb_flow_cache per CPU, a power of two */
};

/* BTF describes only the types a program references. Every entry file places
 * this read-only anchor, which references every struct and enum above, so each
 * compiled object carries the whole ABI and the control plane's mirror can be
 * checked against any of them. Add each new ABI type here. */
struct xlb_abi_anchor {
  enum xlb_family family;
  enum xlb_service_flag service_flag;
  enum xlb_backend_state backend_state;
  enum xlb_backend_flag backend_flag;
  enum xlb_drop drop;
  enum xlb_outcome outcome;
  enum xlb_event event;
  enum xlb_config_flag config_flag;
  struct xlb_vip_key vip_key;
  struct xlb_vip vip;
  struct xlb_frontend_key frontend_key;
  struct xlb_service service;
  struct xlb_maglev_entry maglev_entry;
  struct xlb_backend backend;
  struct xlb_flow_key flow_key;
  struct xlb_flow flow;
  struct xlb_cached_flow cached_flow;
  struct xlb_reverse_nat reverse_nat;
  struct xlb_lpm_key lpm_key;
  struct xlb_lb_counters lb_counters;
  struct xlb_counter counter;
  struct xlb_config config;
};
#define XLB_ABI_ANCHOR const volatile struct xlb_abi_anchor xlb_abi_anchor = {}

#endif /* XLB_ABI_H */
