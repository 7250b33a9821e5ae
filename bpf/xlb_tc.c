/* tc egress (clsact) entry point on the node's uplink: direct server return.
 * A pod's reply to a balanced flow leaves this node with its source turned
 * back into VIP:port, found in xlb_reverse (written by the XDP program when
 * it DNATed the flow). Everything else leaves untouched; this program never
 * drops. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xlb_abi.h"
#include "config.h"
#include "counters.h"
#include "maps.h"
#include "nat.h"
#include "parse.h"

XLB_ABI_ANCHOR;

/* Headers xlb looks at on egress: L2, IPv6 with a few extensions, TCP. */
#define TC_PULL 256

static __always_inline int parse_reply(struct __sk_buff *skb, struct packet *p) {
  packet_init(p, (void *)(long)skb->data, (void *)(long)skb->data_end);
  /* tc sees the skb's length, not just its linear part. */
  p->len = skb->len;
  if (parse_l2(p) != PARSE_OK || parse_l3(p) != PARSE_OK) return 0;
  if (p->fragment) return 0;
  if (p->l4_proto != IPPROTO_TCP && p->l4_proto != IPPROTO_UDP) return 0;
  return parse_ports(p) == PARSE_OK;
}

SEC("tc")
int xlb_tc_egress(struct __sk_buff *skb) {
  struct packet p;
  if (!parse_reply(skb, &p)) {
    /* Headers may sit beyond the linear part of the skb: pull and retry. */
    __u32 want = skb->len < TC_PULL ? skb->len : TC_PULL;
    if (skb->data_end - skb->data >= want || bpf_skb_pull_data(skb, want)) return TC_ACT_OK;
    if (!parse_reply(skb, &p)) return TC_ACT_OK;
  }
  struct xlb_reverse_nat *rn = bpf_map_lookup_elem(&xlb_reverse, &p.key);
  if (!rn) return TC_ACT_OK;

  __u32 csum_off = p.l4_off + l4_csum_off(p.key.proto);
  __u32 sport_off = p.l4_off;
  __u64 udp0 = p.key.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
  if (p.family == XLB_FAMILY_IPV4) {
    __u32 old, new;
    __builtin_memcpy(&old, p.key.src, 4);
    __builtin_memcpy(&new, rn->vip, 4);
    __u32 saddr_off = p.l3_off + offsetof(struct iphdr, saddr);
    if (bpf_l4_csum_replace(skb, csum_off, old, new, BPF_F_PSEUDO_HDR | udp0 | 4)) return TC_ACT_OK;
    if (bpf_l3_csum_replace(skb, p.l3_off + offsetof(struct iphdr, check), old, new, 4))
      return TC_ACT_OK;
    if (bpf_skb_store_bytes(skb, saddr_off, &new, 4, 0)) return TC_ACT_OK;
  } else {
    __u8 vip[16];
    __builtin_memcpy(vip, rn->vip, 16);
    __s64 diff = bpf_csum_diff((__be32 *)p.key.src, 16, (__be32 *)vip, 16, 0);
    /* udp0 here too: a checksum that comes out 0 must become 0xffff, or the
     * port update below would take it for "no checksum" and skip itself. */
    if (bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR | udp0)) return TC_ACT_OK;
    if (bpf_skb_store_bytes(skb, p.l3_off + offsetof(struct ipv6hdr, saddr), vip, 16, 0))
      return TC_ACT_OK;
  }
  __be16 port = rn->port_be;
  if (bpf_l4_csum_replace(skb, csum_off, p.key.sport_be, port, udp0 | 2)) return TC_ACT_OK;
  if (bpf_skb_store_bytes(skb, sport_off, &port, 2, 0)) return TC_ACT_OK;
  count_event(XLB_EV_TC_REVERSE_NAT, skb->len);
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
