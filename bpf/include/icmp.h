/* ICMP in the datapath:
 * - answering a packet too big to encapsulate with fragmentation-needed
 *   (IPv4, DF set) or packet-too-big (IPv6), sent from the VIP back out the
 *   way it came, so the client lowers its path MTU;
 * - ICMP errors about a balanced flow (a router on the way back to the
 *   client says our reply was too big): found by the flow they quote, so
 *   they reach the backend that owns the flow, rewritten so its stack
 *   matches them to the connection. */
#ifndef XLB_ICMP_H
#define XLB_ICMP_H

#include <linux/bpf.h>
#include <linux/icmpv6.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "config.h"
#include "csum.h"
#include "encap.h"
#include "parse.h"

/* Bytes of the offending packet quoted back: enough for any IPv4 header
 * (60) plus 8 bytes of transport (RFC 792), and for IPv6 the header, a few
 * extension headers and the ports. Fixed sizes keep the checksum loop
 * bounded. */
/* linux/icmp.h drags in libc socket headers that do not build for BPF, so
 * the few ICMPv4 definitions xlb needs are here. */
#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4

struct icmp4_frag_needed {
  __u8 type;
  __u8 code;
  __u16 checksum;
  __be16 unused;
  __be16 mtu;
};

#define ICMP4_QUOTE 68
#define ICMP6_QUOTE 128
#define IPV6_MIN_MTU 1280
#define ICMP_REPLY_TTL 64

_Static_assert((8 + ICMP4_QUOTE) / 2 <= CSUM_MAX_WORDS, "ICMP checksum covers the quote");
_Static_assert((8 + ICMP6_QUOTE) / 2 <= CSUM_MAX_WORDS, "ICMPv6 checksum covers the quote");

/* Turns the frame in place into fragmentation-needed / packet-too-big for its
 * sender. The caller knows the packet is larger than the MTU, so the quote
 * is always there. Returns 0 when the frame could not be reshaped. */
static __always_inline int send_too_big(struct xdp_md *ctx, const struct packet *p) {
  struct l2_copy l2;
  if (!l2_save(p, &l2)) return 0;
  int v4 = p->family == XLB_FAMILY_IPV4;
  __u16 quote = v4 ? ICMP4_QUOTE : ICMP6_QUOTE;
  if (p->l3_len < quote) return 0;
  __u16 head = v4 ? sizeof(struct iphdr) + 8 : sizeof(struct ipv6hdr) + 8;
  struct xlb_flow_key addrs = p->key;

  /* Grow in front: the original IP header then sits exactly where the quote
   * belongs, after the new IP and ICMP headers. Then cut the tail. */
  if (bpf_xdp_adjust_head(ctx, -(int)head)) return 0;
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  int keep = l2.len + head + quote;
  if (bpf_xdp_adjust_tail(ctx, keep - (int)(end - data))) return 0;
  if (!l2_restore(ctx, &l2, v4 ? ETH_P_IP : ETH_P_IPV6)) return 0;

  data = (void *)(long)ctx->data;
  end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return 0;
  __u8 mac[ETH_ALEN];
  __builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
  __builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
  __builtin_memcpy(eth->h_source, mac, ETH_ALEN);

  void *l3 = data + (l2.len & XLB_OFF_MASK);
  if (v4) {
    struct iphdr *ip = l3;
    struct icmp4_frag_needed *icmp = l3 + sizeof(*ip);
    if ((void *)icmp + 8 + ICMP4_QUOTE > end) return 0;
    ip->version = 4;
    ip->ihl = 5;
    ip->tos = 0;
    ip->tot_len = bpf_htons(sizeof(*ip) + 8 + ICMP4_QUOTE);
    ip->id = 0;
    ip->frag_off = 0;
    ip->ttl = ICMP_REPLY_TTL;
    ip->protocol = IPPROTO_ICMP;
    __builtin_memcpy(&ip->saddr, addrs.dst, 4);
    __builtin_memcpy(&ip->daddr, addrs.src, 4);
    ip->check = ipv4_header_csum(ip);
    icmp->type = ICMP_DEST_UNREACH;
    icmp->code = ICMP_FRAG_NEEDED;
    icmp->checksum = 0;
    icmp->unused = 0;
    icmp->mtu = bpf_htons(xlb_config.mtu - sizeof(struct iphdr));
    icmp->checksum = csum_fold(csum_partial_words((__u16 *)icmp, (8 + ICMP4_QUOTE) / 2));
  } else {
    struct ipv6hdr *ip6 = l3;
    struct icmp6hdr *icmp6 = l3 + sizeof(*ip6);
    if ((void *)icmp6 + 8 + ICMP6_QUOTE > end) return 0;
    *(__be32 *)ip6 = bpf_htonl(0x60000000);
    ip6->payload_len = bpf_htons(8 + ICMP6_QUOTE);
    ip6->nexthdr = IPPROTO_ICMPV6;
    ip6->hop_limit = ICMP_REPLY_TTL;
    __builtin_memcpy(&ip6->saddr, addrs.dst, 16);
    __builtin_memcpy(&ip6->daddr, addrs.src, 16);
    __u32 mtu = xlb_config.mtu - sizeof(struct ipv6hdr);
    if (mtu < IPV6_MIN_MTU) mtu = IPV6_MIN_MTU;
    icmp6->icmp6_type = ICMPV6_PKT_TOOBIG;
    icmp6->icmp6_code = 0;
    icmp6->icmp6_cksum = 0;
    icmp6->icmp6_mtu = bpf_htonl(mtu);
    /* Pseudo-header: addresses, upper-layer length, next header. */
    __u64 sum = csum_partial_words((__u16 *)&ip6->saddr, 16);
    sum += bpf_htons(8 + ICMP6_QUOTE);
    sum += bpf_htons(IPPROTO_ICMPV6);
    sum += csum_partial_words((__u16 *)icmp6, (8 + ICMP6_QUOTE) / 2);
    icmp6->icmp6_cksum = csum_fold(sum);
  }
  return 1;
}

/* What an ICMP error quotes: the packet our side sent (VIP:port -> client),
 * turned around into the client's flow key. */
struct icmp_quote {
  __u16 inner_l3_off;
  __u16 inner_l4_off;
  struct xlb_flow_key flow;
};

enum icmp_kind {
  ICMP_KIND_OTHER = 0,   /* not an error xlb forwards */
  ICMP_KIND_TOO_BIG = 1, /* fragmentation-needed / packet-too-big */
  ICMP_KIND_INVALID = 2, /* cut short */
};

static __always_inline enum icmp_kind icmp_kind(const struct packet *p) {
  __u8 *icmp = p->data + (p->l4_off & XLB_OFF_MASK);
  if (icmp + 8 > (__u8 *)p->data_end) return ICMP_KIND_INVALID;
  if (p->family == XLB_FAMILY_IPV4)
    return icmp[0] == ICMP_DEST_UNREACH && icmp[1] == ICMP_FRAG_NEEDED ? ICMP_KIND_TOO_BIG
                                                                       : ICMP_KIND_OTHER;
  return icmp[0] == ICMPV6_PKT_TOOBIG ? ICMP_KIND_TOO_BIG : ICMP_KIND_OTHER;
}

/* memcmp is not available to BPF programs. */
static __always_inline int addr6_eq(const __u32 *a, const __u32 *b) {
  return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* Reads the quoted packet. Returns 0 unless it is a TCP or UDP packet from
 * the VIP this error was sent to (anything else is not about our flows). */
static __always_inline int parse_quote(const struct packet *p, struct icmp_quote *q) {
  __u16 off = p->l4_off + 8;
  __u8 proto;
  q->inner_l3_off = off;
  if (p->family == XLB_FAMILY_IPV4) {
    struct iphdr *in = p->data + (off & XLB_OFF_MASK);
    if ((void *)(in + 1) > p->data_end) return 0;
    if (in->version != 4 || in->ihl < 5) return 0;
    if (in->saddr != *(const __u32 *)p->key.dst) return 0;
    proto = in->protocol;
    q->inner_l4_off = off + in->ihl * 4;
    __builtin_memcpy(q->flow.src, &in->daddr, 4);
    __builtin_memcpy(q->flow.dst, &in->saddr, 4);
  } else {
    struct ipv6hdr *in6 = p->data + (off & XLB_OFF_MASK);
    if ((void *)(in6 + 1) > p->data_end) return 0;
    if (in6->version != 6) return 0;
    if (!addr6_eq((const __u32 *)&in6->saddr, (const __u32 *)p->key.dst)) return 0;
    proto = in6->nexthdr;
    q->inner_l4_off = off + sizeof(*in6);
    __builtin_memcpy(q->flow.src, &in6->daddr, 16);
    __builtin_memcpy(q->flow.dst, &in6->saddr, 16);
  }
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return 0;
  __be16 *ports = p->data + (q->inner_l4_off & XLB_OFF_MASK);
  if ((void *)(ports + 2) > p->data_end) return 0;
  q->flow.sport_be = ports[1];
  q->flow.dport_be = ports[0];
  q->flow.proto = proto;
  q->flow.family = p->family;
  return 1;
}

/* Rewrites an ICMP error for the pod: the outer destination and the quoted
 * source become the pod's address and port, with every checksum adjusted
 * (outer IPv4 header, quoted IPv4 header, ICMP). The quoted transport
 * checksum is left alone: it covers bytes that are not in the quote. */
static __always_inline int icmp_to_pod(struct packet *p, const struct icmp_quote *q,
                                       const struct xlb_backend *b) {
  void *data = p->data, *end = p->data_end;
  __u16 *icmp_check = data + ((p->l4_off + 2) & XLB_OFF_MASK);
  __be16 *qsport = data + (q->inner_l4_off & XLB_OFF_MASK);
  if ((void *)(icmp_check + 1) > end || (void *)(qsport + 1) > end) return 0;
  __u16 c = *icmp_check;
  if (p->family == XLB_FAMILY_IPV4) {
    struct iphdr *ip = data + (p->l3_off & XLB_OFF_MASK);
    struct iphdr *in = data + (q->inner_l3_off & XLB_OFF_MASK);
    if ((void *)(ip + 1) > end || (void *)(in + 1) > end) return 0;
    __u32 pod;
    __builtin_memcpy(&pod, b->addr, 4);
    ip->check = csum_replace4(ip->check, ip->daddr, pod);
    ip->daddr = pod;
    __u16 old_inner_check = in->check;
    in->check = csum_replace4(in->check, in->saddr, pod);
    c = csum_replace4(c, in->saddr, pod);
    c = csum_replace2(c, old_inner_check, in->check);
    in->saddr = pod;
  } else {
    struct ipv6hdr *ip6 = data + (p->l3_off & XLB_OFF_MASK);
    struct ipv6hdr *in6 = data + (q->inner_l3_off & XLB_OFF_MASK);
    if ((void *)(ip6 + 1) > end || (void *)(in6 + 1) > end) return 0;
    __u32 old[4], pod[4];
    __builtin_memcpy(pod, b->addr, 16);
    /* ICMPv6's checksum covers the outer destination (pseudo-header). */
    __builtin_memcpy(old, &ip6->daddr, 16);
    c = csum_replace_words(c, old, pod, 4);
    __builtin_memcpy(&ip6->daddr, pod, 16);
    __builtin_memcpy(old, &in6->saddr, 16);
    c = csum_replace_words(c, old, pod, 4);
    __builtin_memcpy(&in6->saddr, pod, 16);
  }
  c = csum_replace2(c, *qsport, b->port_be);
  *qsport = b->port_be;
  *icmp_check = c;
  return 1;
}

#endif /* XLB_ICMP_H */
