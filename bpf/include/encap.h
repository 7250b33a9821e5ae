/* Tunnelling between nodes: IPIP for IPv4 and IPv6-in-IPv6 for IPv6, built
 * and taken apart in XDP (this kernel has no tunnel devices, and needs
 * none). The inner packet is the client's, unchanged: the backend's node
 * balances it again with the same tables and hash, so both nodes agree on
 * the backend, and that node DNATs it to the pod. */
#ifndef XLB_ENCAP_H
#define XLB_ENCAP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "config.h"
#include "csum.h"
#include "flowcache.h"
#include "maps.h"
#include "parse.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define IPV4_DF 0x4000
#define ENCAP_TTL 64

static __always_inline __u16 encap_overhead(__u8 family) {
  return family == XLB_FAMILY_IPV4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
}

/* The L2 header (Ethernet plus up to two VLAN tags) as found on the frame,
 * so it can be written back after the frame start moves. */
struct l2_copy {
  __u8 bytes[14 + 4 * XLB_MAX_VLAN_TAGS];
  __u16 len;
};

static __always_inline int l2_save(const struct packet *p, struct l2_copy *c) {
  c->len = p->l3_off;
  void *from = p->data;
  if (from + sizeof(c->bytes) <= p->data_end) {
    __builtin_memcpy(c->bytes, from, sizeof(c->bytes));
    return 1;
  }
  if (from + 14 > p->data_end) return 0;
  __builtin_memcpy(c->bytes, from, 14);
  return c->len == 14;
}

/* Writes the saved L2 header at the new frame start; its last two bytes
 * (the ethertype) become `proto`. */
static __always_inline int l2_restore(struct xdp_md *ctx, const struct l2_copy *c, __u16 proto) {
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  if (data + sizeof(c->bytes) > end) return 0;
  if (c->len == 14) {
    __builtin_memcpy(data, c->bytes, 12);
    *(__be16 *)(data + 12) = bpf_htons(proto);
  } else if (c->len == 18) {
    __builtin_memcpy(data, c->bytes, 16);
    *(__be16 *)(data + 16) = bpf_htons(proto);
  } else {
    __builtin_memcpy(data, c->bytes, 20);
    *(__be16 *)(data + 20) = bpf_htons(proto);
  }
  return 1;
}

static __always_inline __u16 ipv4_header_csum(struct iphdr *ip) {
  ip->check = 0;
  return csum_fold(csum_partial_words((__u16 *)ip, sizeof(*ip) / 2));
}

static __always_inline int send_via(struct ethhdr *eth, const __u8 *dmac, const __u8 *smac,
                                    __u32 ifindex, __u32 ingress, int *outcome) {
  __builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, smac, ETH_ALEN);
  if (ifindex == ingress) {
    *outcome = XLB_OUT_ENCAP_TX;
    return XDP_TX;
  }
  *outcome = XLB_OUT_ENCAP_REDIRECT;
  return bpf_redirect(ifindex, 0);
}

/* Sends a finished encapsulated frame towards the outer destination, the
 * node of `backend_id`: MACs and interface from the kernel's FIB,
 * remembered per backend for a second (a route or neighbour change reaches
 * tunnelled traffic within that time; a FIB lookup costs more than the rest
 * of the path) and while the flow cache generation stands (a backend that
 * moved bumps it). Returns the XDP action and sets *outcome or *drop. */
static __always_inline int fib_forward(struct xdp_md *ctx, __u8 family, __u32 backend_id,
                                       __u32 generation, int *outcome, int *drop) {
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  /* Read once: the compiler must not turn a later read into a derived ctx
   * pointer, which the verifier refuses. */
  __u32 ingress = ctx->ingress_ifindex;
  if ((void *)(eth + 1) > end) goto malformed;
  __u32 now = jiffies32();
  struct nexthop *nh = bpf_map_lookup_elem(&xlb_nexthops, &backend_id);
  if (nh && nh->ifindex && nh->ingress_ifindex == ingress && nh->generation == generation &&
      now - nh->checked_jiffies < xlb_config.hz)
    return send_via(eth, nh->dmac, nh->smac, nh->ifindex, ingress, outcome);

  struct bpf_fib_lookup fib = {.ifindex = ingress};
  if (family == XLB_FAMILY_IPV4) {
    struct iphdr *ip = data + sizeof(*eth);
    if ((void *)(ip + 1) > end) goto malformed;
    fib.family = AF_INET;
    fib.tos = ip->tos;
    fib.tot_len = bpf_ntohs(ip->tot_len);
    fib.ipv4_src = ip->saddr;
    fib.ipv4_dst = ip->daddr;
  } else {
    struct ipv6hdr *ip6 = data + sizeof(*eth);
    if ((void *)(ip6 + 1) > end) goto malformed;
    fib.family = AF_INET6;
    fib.tot_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
    __builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
    __builtin_memcpy(fib.ipv6_dst, &ip6->daddr, 16);
  }
  int rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
  if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
    /* The next hop's MAC is not known yet: the kernel forwards this one
     * (the frame still carries our own MAC as destination) and resolves it. */
    *outcome = XLB_OUT_ENCAP_KERNEL;
    return XDP_PASS;
  }
  if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
    *drop = rc == BPF_FIB_LKUP_RET_FRAG_NEEDED ? XLB_DROP_TOO_BIG : XLB_DROP_FIB;
    return XDP_DROP;
  }
  if (nh) {
    nh->ifindex = fib.ifindex;
    nh->ingress_ifindex = ingress;
    __builtin_memcpy(nh->dmac, fib.dmac, ETH_ALEN);
    __builtin_memcpy(nh->smac, fib.smac, ETH_ALEN);
    nh->generation = generation;
    nh->checked_jiffies = now;
  }
  return send_via(eth, fib.dmac, fib.smac, fib.ifindex, ingress, outcome);
malformed:
  *drop = XLB_DROP_MALFORMED;
  return XDP_DROP;
}

/* Puts an outer IPv4 or IPv6 header in front of the packet's IP header,
 * drops any VLAN tags (the FIB picks the egress), and keeps the original
 * MACs until fib_forward() replaces them. `node` is the outer destination. */
static __always_inline int encapsulate(struct xdp_md *ctx, const struct packet *p, const __u8 *node,
                                       __u32 hash) {
  struct l2_copy l2;
  if (!l2_save(p, &l2)) return 0;
  __u8 tos = 0;
  __be32 flowinfo = 0;
  if (p->family == XLB_FAMILY_IPV4) {
    struct iphdr *in = p->data + (p->l3_off & XLB_OFF_MASK);
    if ((void *)(in + 1) > p->data_end) return 0;
    tos = in->tos;
  } else {
    struct ipv6hdr *in6 = p->data + (p->l3_off & XLB_OFF_MASK);
    if ((void *)(in6 + 1) > p->data_end) return 0;
    /* Traffic class from the inner header; the flow label carries the flow
     * hash so routers between the nodes spread flows across their paths. */
    flowinfo = *(__be32 *)in6 & bpf_htonl(0x0ff00000);
    flowinfo |= bpf_htonl(hash & 0xfffff);
  }
  /* Bytes past the IP packet (Ethernet padding, trailers) must not ride
   * along inside the tunnel: the outer length would not cover them. */
  int trailer = (int)p->len - (p->l3_off + p->l3_len);
  if (trailer > 0 && bpf_xdp_adjust_tail(ctx, -trailer)) return 0;
  __u16 outer = encap_overhead(p->family);
  int grow = sizeof(struct ethhdr) + outer - p->l3_off;
  if (bpf_xdp_adjust_head(ctx, -grow)) return 0;
  l2.len = 14;
  __u16 proto = p->family == XLB_FAMILY_IPV4 ? ETH_P_IP : ETH_P_IPV6;
  if (!l2_restore(ctx, &l2, proto)) return 0;

  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  if (p->family == XLB_FAMILY_IPV4) {
    struct iphdr *ip = data + sizeof(struct ethhdr);
    if ((void *)(ip + 1) > end) return 0;
    ip->version = 4;
    ip->ihl = 5;
    ip->tos = tos;
    ip->tot_len = bpf_htons(p->l3_len + outer);
    ip->id = 0;
    ip->frag_off = bpf_htons(IPV4_DF);
    ip->ttl = ENCAP_TTL;
    ip->protocol = IPPROTO_IPIP;
    ip->saddr = xlb_config.node_ipv4_be;
    __builtin_memcpy(&ip->daddr, node, 4);
    ip->check = ipv4_header_csum(ip);
  } else {
    struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
    if ((void *)(ip6 + 1) > end) return 0;
    *(__be32 *)ip6 = bpf_htonl(0x60000000) | flowinfo;
    ip6->payload_len = bpf_htons(p->l3_len);
    ip6->nexthdr = IPPROTO_IPV6;
    ip6->hop_limit = ENCAP_TTL;
    /* Word by word through the volatile global: a plain memcpy would let
     * the compiler copy the initializer (zeros) instead of the loaded value. */
    const volatile __u32 *src = (const volatile __u32 *)xlb_config.node_ipv6;
    __u32 *saddr = (__u32 *)&ip6->saddr;
    saddr[0] = src[0];
    saddr[1] = src[1];
    saddr[2] = src[2];
    saddr[3] = src[3];
    __builtin_memcpy(&ip6->daddr, node, 16);
  }
  return 1;
}

/* Is this an IPIP / IPv6-in-IPv6 packet addressed to this node? */
static __always_inline int for_decap(const struct packet *p) {
  if (!(xlb_config.flags & XLB_CONFIG_F_DECAP)) return 0;
  if (p->family == XLB_FAMILY_IPV4) {
    return p->l4_proto == IPPROTO_IPIP && *(__u32 *)p->key.dst == xlb_config.node_ipv4_be;
  }
  if (p->l4_proto != IPPROTO_IPV6) return 0;
  const __u32 *dst = (const __u32 *)p->key.dst;
  const volatile __u32 *node = (const volatile __u32 *)xlb_config.node_ipv6;
  return dst[0] == node[0] && dst[1] == node[1] && dst[2] == node[2] && dst[3] == node[3];
}

/* Removes the outer header (and any extension headers or options before the
 * inner one); the L2 header moves up to the inner IP header. */
static __always_inline int decapsulate(struct xdp_md *ctx, const struct packet *p) {
  struct l2_copy l2;
  if (!l2_save(p, &l2)) return 0;
  int shrink = p->l4_off - p->l3_off;
  if (bpf_xdp_adjust_head(ctx, shrink)) return 0;
  return l2_restore(ctx, &l2, p->eth_proto);
}

#endif /* XLB_ENCAP_H */
