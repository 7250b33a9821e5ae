/* Destination NAT to a pod on this node, in XDP. Only the destination
 * changes: the client's address stays, so the pod sees who is talking. */
#ifndef XLB_NAT_H
#define XLB_NAT_H

#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "csum.h"
#include "maps.h"
#include "parse.h"

#ifndef offsetof
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif

/* Offset of the checksum inside the transport header. */
static __always_inline __u16 l4_csum_off(__u8 proto) {
  return proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : offsetof(struct udphdr, check);
}

/* Rewrites the destination address and port of a parsed TCP or UDP packet.
 * Returns 0 when the headers are not where parsing found them. */
static __always_inline int dnat(struct packet *p, const __u8 *addr, __be16 port_be) {
  void *data = p->data, *end = p->data_end;
  __u8 *l4 = data + (p->l4_off & XLB_OFF_MASK);
  if (l4 + 8 > (__u8 *)end) return 0;
  __u16 *check;
  if (p->key.proto == IPPROTO_TCP) {
    if (l4 + 20 > (__u8 *)end) return 0;
    check = (__u16 *)(l4 + offsetof(struct tcphdr, check));
  } else {
    check = (__u16 *)(l4 + offsetof(struct udphdr, check));
  }
  __be16 *dport = (__be16 *)(l4 + 2);
  /* UDP over IPv4 may carry no checksum (0): it must stay 0. */
  int has_csum = !(p->key.proto == IPPROTO_UDP && p->family == XLB_FAMILY_IPV4 && *check == 0);
  __u16 c = *check;

  if (p->family == XLB_FAMILY_IPV4) {
    struct iphdr *ip = data + (p->l3_off & XLB_OFF_MASK);
    if ((void *)(ip + 1) > end) return 0;
    __u32 old = ip->daddr, new;
    __builtin_memcpy(&new, addr, 4);
    ip->check = csum_replace4(ip->check, old, new);
    ip->daddr = new;
    if (has_csum) c = csum_replace4(c, old, new);
  } else {
    struct ipv6hdr *ip6 = data + (p->l3_off & XLB_OFF_MASK);
    if ((void *)(ip6 + 1) > end) return 0;
    __u32 old[4], new[4];
    __builtin_memcpy(old, &ip6->daddr, 16);
    __builtin_memcpy(new, addr, 16);
    c = csum_replace_words(c, old, new, 4);
    __builtin_memcpy(&ip6->daddr, new, 16);
  }
  if (has_csum) {
    c = csum_replace2(c, *dport, port_be);
    /* For UDP a computed 0 is sent as all ones (0 means "none"). */
    if (c == 0 && p->key.proto == IPPROTO_UDP) c = 0xffff;
    *check = c;
  }
  *dport = port_be;
  return 1;
}

/* Remembers how to turn the pod's replies back into VIP:port replies. With
 * `if_missing`, an existing entry is left alone (a lookup, not a write). */
static __always_inline void record_reverse(const struct xlb_flow_key *flow,
                                           const struct xlb_backend *b, __u32 service_id,
                                           int if_missing) {
  struct xlb_flow_key rk = {
      .sport_be = b->port_be,
      .dport_be = flow->sport_be,
      .proto = flow->proto,
      .family = flow->family,
  };
  __builtin_memcpy(rk.src, b->addr, 16);
  __builtin_memcpy(rk.dst, flow->src, 16);
  if (if_missing && bpf_map_lookup_elem(&xlb_reverse, &rk)) return;
  struct xlb_reverse_nat rn = {
      .port_be = flow->dport_be,
      .family = flow->family,
      .service_id = service_id,
  };
  __builtin_memcpy(rn.vip, flow->dst, 16);
  bpf_map_update_elem(&xlb_reverse, &rk, &rn, BPF_ANY);
}

#endif /* XLB_NAT_H */
