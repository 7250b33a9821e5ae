/* XDP entry point on the node's uplink.
 *
 * Today it classifies every frame and counts it, then lets it pass: the
 * foundation the load balancer's packet walk (frontend lookup, Maglev,
 * DNAT/encapsulation) is built on. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb_abi.h"
#include "parse.h"
#include "stats.h"

XLB_ABI_ANCHOR;

const volatile struct xlb_config xlb_config = {
    .abi_version = XLB_ABI_VERSION,
    .mtu = 1500,
};

static __always_inline enum xlb_stat classify(const struct packet *p) {
  int v6 = p->l3_proto == ETH_P_IPV6;
  switch (p->l4_proto) {
    case IPPROTO_TCP:
      return v6 ? XLB_STAT_IPV6_TCP : XLB_STAT_IPV4_TCP;
    case IPPROTO_UDP:
      return v6 ? XLB_STAT_IPV6_UDP : XLB_STAT_IPV4_UDP;
    case IPPROTO_ICMP:
      return v6 ? XLB_STAT_IPV6_OTHER : XLB_STAT_IPV4_ICMP;
    case IPPROTO_ICMPV6:
      return v6 ? XLB_STAT_IPV6_ICMP : XLB_STAT_IPV4_OTHER;
    default:
      return v6 ? XLB_STAT_IPV6_OTHER : XLB_STAT_IPV4_OTHER;
  }
}

SEC("xdp")
int xlb_xdp(struct xdp_md *ctx) {
  struct packet p = {
      .data = (void *)(long)ctx->data,
      .data_end = (void *)(long)ctx->data_end,
  };
  __u64 len = p.data_end - p.data;
  enum parse_result r = parse_l2(&p);
  if (r == PARSE_OK) r = parse_l3(&p);
  switch (r) {
    case PARSE_OK:
      stat_add(classify(&p), len);
      break;
    case PARSE_NOT_IP:
      stat_add(XLB_STAT_NON_IP, len);
      break;
    default:
      stat_add(XLB_STAT_MALFORMED, len);
      break;
  }
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
