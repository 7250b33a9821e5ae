/* Bounded header parsing for XDP and tc. Every read is checked against
 * data_end before it happens, which is what the verifier demands and what
 * keeps a truncated or hostile frame from being read past its end. Parsing
 * never changes the packet; it records what was found in struct packet. */
#ifndef XLB_PARSE_H
#define XLB_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xlb_abi.h"

/* Provider bridging and QinQ: two tags cover what top-of-rack ports send. */
#define XLB_MAX_VLAN_TAGS 2
/* IPv6 extension headers walked before giving up on finding the transport. */
#define XLB_MAX_IPV6_EXT 6
/* Offsets are masked with this so the verifier can bound packet pointers;
 * no frame xlb handles is larger. */
#define XLB_OFF_MASK 0x3fff

#define IPV4_MF 0x2000
#define IPV4_OFFSET 0x1fff

struct vlan_tag {
  __be16 tci;
  __be16 encapsulated_proto;
};

/* Extension header numbers with a known layout, and ones xlb does not
 * process (RFC 7045: mobility, HIP, shim6, experimental). */
#define IPV6_EXT_HOP 0
#define IPV6_EXT_ROUTING 43
#define IPV6_EXT_FRAGMENT 44
#define IPV6_EXT_AH 51
#define IPV6_EXT_DSTOPTS 60
#define IPV6_EXT_MOBILITY 135
#define IPV6_EXT_HIP 139
#define IPV6_EXT_SHIM6 140
#define IPV6_EXT_EXP1 253
#define IPV6_EXT_EXP2 254

struct packet {
  void *data;
  void *data_end;
  __u32 len;            /* frame length */
  __u16 l3_off;         /* Ethernet header and VLAN tags */
  __u16 l4_off;         /* start of the transport header */
  __u16 l3_len;         /* IP total length per the header (IPv6: 40 + payload length) */
  __u16 eth_proto;      /* host order: innermost ethertype */
  __u8 family;          /* XLB_FAMILY_IPV4 / XLB_FAMILY_IPV6 */
  __u8 l4_proto;        /* IPPROTO_*; for IPv6 the first header past the extensions */
  __u8 ttl;             /* TTL or hop limit */
  __u8 fragment;        /* any fragment, first or later */
  __u8 ext_unsupported; /* IPv6 extension xlb does not process, or routing with segments left */
  __u8 options;         /* IPv4 header longer than 20 bytes */
  /* Addresses, protocol and family; ports by parse_ports(). Aligned so the
   * hashes and compares may read it in whole words. */
  struct xlb_flow_key key __attribute__((aligned(8)));
};

enum parse_result {
  PARSE_OK = 0,
  PARSE_NOT_IP = 1,
  PARSE_MALFORMED = 2,
};

static __always_inline void packet_init(struct packet *p, void *data, void *data_end) {
  __builtin_memset(p, 0, sizeof(*p));
  p->data = data;
  p->data_end = data_end;
  p->len = data_end - data;
}

static __always_inline enum parse_result parse_l2(struct packet *p) {
  struct ethhdr *eth = p->data;
  if ((void *)(eth + 1) > p->data_end) return PARSE_MALFORMED;
  __u16 proto = bpf_ntohs(eth->h_proto);
  __u16 off = sizeof(*eth);
#pragma unroll
  for (int i = 0; i < XLB_MAX_VLAN_TAGS; i++) {
    if (proto != ETH_P_8021Q && proto != ETH_P_8021AD) break;
    struct vlan_tag *tag = p->data + off;
    if ((void *)(tag + 1) > p->data_end) return PARSE_MALFORMED;
    proto = bpf_ntohs(tag->encapsulated_proto);
    off += sizeof(*tag);
  }
  p->l3_off = off;
  p->eth_proto = proto;
  return (proto == ETH_P_IP || proto == ETH_P_IPV6) ? PARSE_OK : PARSE_NOT_IP;
}

static __always_inline enum parse_result parse_ipv4(struct packet *p) {
  struct iphdr *ip = p->data + (p->l3_off & XLB_OFF_MASK);
  if ((void *)(ip + 1) > p->data_end) return PARSE_MALFORMED;
  __u16 hlen = ip->ihl * 4;
  __u16 tot = bpf_ntohs(ip->tot_len);
  if (ip->version != 4 || hlen < sizeof(*ip) || tot < hlen) return PARSE_MALFORMED;
  if ((__u32)p->l3_off + tot > p->len) return PARSE_MALFORMED;
  p->family = XLB_FAMILY_IPV4;
  p->l3_len = tot;
  p->l4_off = p->l3_off + hlen;
  p->l4_proto = ip->protocol;
  p->ttl = ip->ttl;
  p->options = hlen > sizeof(*ip);
  p->fragment = (bpf_ntohs(ip->frag_off) & (IPV4_MF | IPV4_OFFSET)) != 0;
  __builtin_memcpy(p->key.src, &ip->saddr, 4);
  __builtin_memcpy(p->key.dst, &ip->daddr, 4);
  p->key.proto = ip->protocol;
  p->key.family = XLB_FAMILY_IPV4;
  return PARSE_OK;
}

struct ipv6_ext_hdr {
  __u8 nexthdr;
  __u8 hdrlen;
  __u8 type;          /* routing header: routing type */
  __u8 segments_left; /* routing header */
};

static __always_inline enum parse_result parse_ipv6(struct packet *p) {
  struct ipv6hdr *ip6 = p->data + (p->l3_off & XLB_OFF_MASK);
  if ((void *)(ip6 + 1) > p->data_end) return PARSE_MALFORMED;
  if (ip6->version != 6) return PARSE_MALFORMED;
  __u32 total = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
  if (p->l3_off + total > p->len) return PARSE_MALFORMED;
  p->family = XLB_FAMILY_IPV6;
  p->l3_len = total;
  p->ttl = ip6->hop_limit;
  __builtin_memcpy(p->key.src, &ip6->saddr, 16);
  __builtin_memcpy(p->key.dst, &ip6->daddr, 16);
  p->key.family = XLB_FAMILY_IPV6;

  __u8 next = ip6->nexthdr;
  __u16 off = p->l3_off + sizeof(*ip6);
#pragma unroll
  for (int i = 0; i < XLB_MAX_IPV6_EXT; i++) {
    if (next != IPV6_EXT_HOP && next != IPV6_EXT_ROUTING && next != IPV6_EXT_FRAGMENT &&
        next != IPV6_EXT_AH && next != IPV6_EXT_DSTOPTS)
      break;
    struct ipv6_ext_hdr *ext = p->data + (off & XLB_OFF_MASK);
    if ((void *)(ext + 1) > p->data_end) return PARSE_MALFORMED;
    if (next == IPV6_EXT_FRAGMENT) {
      /* Later fragments carry no transport header at all, and the first
       * one is useless alone: stop here either way. */
      p->fragment = 1;
      p->l4_proto = ext->nexthdr;
      p->l4_off = off + 8;
      p->key.proto = ext->nexthdr;
      return PARSE_OK;
    }
    if (next == IPV6_EXT_ROUTING && ext->segments_left > 0) p->ext_unsupported = 1;
    __u16 len = next == IPV6_EXT_AH ? (ext->hdrlen + 2) * 4 : (ext->hdrlen + 1) * 8;
    next = ext->nexthdr;
    off += len;
  }
  if (next == IPV6_EXT_HOP || next == IPV6_EXT_ROUTING || next == IPV6_EXT_AH ||
      next == IPV6_EXT_DSTOPTS || next == IPV6_EXT_MOBILITY || next == IPV6_EXT_HIP ||
      next == IPV6_EXT_SHIM6 || next == IPV6_EXT_EXP1 || next == IPV6_EXT_EXP2)
    p->ext_unsupported = 1;
  if (off > p->l3_off + total) return PARSE_MALFORMED;
  p->l4_proto = next;
  p->l4_off = off;
  p->key.proto = next;
  return PARSE_OK;
}

static __always_inline enum parse_result parse_l3(struct packet *p) {
  return p->eth_proto == ETH_P_IP ? parse_ipv4(p) : parse_ipv6(p);
}

/* TCP and UDP ports into the flow key; the whole transport header must be
 * present (20 bytes for TCP, 8 for UDP). */
static __always_inline enum parse_result parse_ports(struct packet *p) {
  __u32 need = p->l4_proto == IPPROTO_TCP ? 20 : 8;
  __u8 *l4 = p->data + (p->l4_off & XLB_OFF_MASK);
  /* Constant-size checks: the verifier proves packet bounds only from them. */
  if (p->l4_proto == IPPROTO_TCP) {
    if (l4 + 20 > (__u8 *)p->data_end) return PARSE_MALFORMED;
  } else if (l4 + 8 > (__u8 *)p->data_end) {
    return PARSE_MALFORMED;
  }
  if ((__u32)p->l4_off + need > (__u32)p->l3_off + p->l3_len) return PARSE_MALFORMED;
  __be16 *ports = (__be16 *)l4;
  p->key.sport_be = ports[0];
  p->key.dport_be = ports[1];
  return PARSE_OK;
}

#endif /* XLB_PARSE_H */
