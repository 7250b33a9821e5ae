/* Bounded header parsing for XDP. Every read is checked against data_end
 * before it happens, which is what the verifier demands and what keeps a
 * truncated or hostile frame from being read past its end. */
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

/* Provider-bridging and QinQ: two tags cover what top-of-rack ports send. */
#define XLB_MAX_VLAN_TAGS 2

struct vlan_tag {
  __be16 tci;
  __be16 encapsulated_proto;
};

struct packet {
  void *data;
  void *data_end;
  __u16 l3_proto; /* ETH_P_IP, ETH_P_IPV6 or whatever else was found, host order */
  __u8 l4_proto;  /* IPPROTO_* from the IP header (the first next-header for IPv6) */
  __u32 l3_off;
  __u32 len;
};

enum parse_result {
  PARSE_OK = 0,
  PARSE_NOT_IP = 1,
  PARSE_MALFORMED = 2,
};

static __always_inline enum parse_result parse_l2(struct packet *p) {
  struct ethhdr *eth = p->data;
  if ((void *)(eth + 1) > p->data_end) return PARSE_MALFORMED;
  __u16 proto = bpf_ntohs(eth->h_proto);
  __u32 off = sizeof(*eth);
#pragma unroll
  for (int i = 0; i < XLB_MAX_VLAN_TAGS; i++) {
    if (proto != ETH_P_8021Q && proto != ETH_P_8021AD) break;
    struct vlan_tag *tag = p->data + off;
    if ((void *)(tag + 1) > p->data_end) return PARSE_MALFORMED;
    proto = bpf_ntohs(tag->encapsulated_proto);
    off += sizeof(*tag);
  }
  p->l3_proto = proto;
  p->l3_off = off;
  return (proto == ETH_P_IP || proto == ETH_P_IPV6) ? PARSE_OK : PARSE_NOT_IP;
}

static __always_inline enum parse_result parse_l3(struct packet *p) {
  void *l3 = p->data + p->l3_off;
  if (p->l3_proto == ETH_P_IP) {
    struct iphdr *ip = l3;
    if ((void *)(ip + 1) > p->data_end) return PARSE_MALFORMED;
    if (ip->version != 4 || ip->ihl < 5) return PARSE_MALFORMED;
    if (l3 + ip->ihl * 4 > p->data_end) return PARSE_MALFORMED;
    p->l4_proto = ip->protocol;
    return PARSE_OK;
  }
  struct ipv6hdr *ip6 = l3;
  if ((void *)(ip6 + 1) > p->data_end) return PARSE_MALFORMED;
  if (ip6->version != 6) return PARSE_MALFORMED;
  p->l4_proto = ip6->nexthdr;
  return PARSE_OK;
}

#endif /* XLB_PARSE_H */
