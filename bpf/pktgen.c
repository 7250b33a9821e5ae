/* xlb's own packet generator: an XDP program meant to be run with
 * BPF_PROG_TEST_RUN and BPF_F_TEST_XDP_LIVE_FRAMES (bench/pktgen/generator.ts).
 *
 * In live-frames mode the kernel feeds the program copies of one template
 * frame from a page pool and honours its verdict, so returning
 * bpf_redirect(ifindex) transmits the frame out of that interface at several
 * million frames per second on one core. This machine's kernel has no pktgen
 * module and xdp-trafficgen does not run on it, hence this program.
 *
 * Optionally it spreads the frames over `flows` flows by rewriting the L4
 * source port, so receivers that hash on the 5-tuple (Maglev, connection
 * tables, RSS) see more than one flow. The checksum is updated incrementally
 * from the bytes actually in the frame: in live mode a recycled page keeps
 * whatever the previous run wrote into it (only the data pointers are reset),
 * so the program must not assume it sees the pristine template. An
 * incremental update from the current port and checksum is right either way.
 *
 * With `restore` set, the program first writes the template (from the
 * pktgen_template map) over the frame, so a receiver that rewrites frames
 * (DNAT, encapsulation) gets the original every time instead of its own
 * output from the page's previous trip.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xlb_abi.h"

XLB_ABI_ANCHOR;

/* Set by the loader; read-only, so the verifier prunes the flow rewrite when
 * it is off and the per-packet cost stays one map lookup and a redirect. */
const volatile __u32 target_ifindex = 0;
const volatile __u32 flows = 0;      /* 0 or 1: frames go out unchanged */
const volatile __u16 base_sport = 0; /* host order; ports base_sport .. base_sport+flows-1 */
const volatile __u8 restore = 0;     /* rewrite each frame from pktgen_template first */

#define PKTGEN_TEMPLATE_MAX 256

struct pktgen_template {
  __u32 len;
  __u8 bytes[PKTGEN_TEMPLATE_MAX];
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct pktgen_template);
} pktgen_template SEC(".maps");

/* Frames this program handed to bpf_redirect(), per CPU (slot 0). Redirect
 * errors happen after the program returns and are not seen here: the
 * receiver's own counter says what arrived. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct xlb_counter);
} pktgen_stats SEC(".maps");

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). The one's complement sum does
 * not depend on byte order as long as every operand is in the same one, so
 * the network-order values are used as they are. */
static __always_inline __u16 csum_replace16(__u16 check, __u16 from, __u16 to) {
  __u32 sum = (__u16)~check + (__u16)~from + (__u32)to;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)~sum;
}

/* Rewrites the source port of a TCP or UDP frame over IPv4 or IPv6 (no VLAN
 * tag, no IPv6 extension header) to port_be. Anything else is left alone: a
 * generator must never fail on the frame it was given, only not vary it. */
static __always_inline void set_source_port(void *data, void *end, __be16 port_be) {
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return;

  __u8 proto;
  void *l4;
  int v4 = 0;
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end) return;
    if (ip->ihl < 5) return;
    /* A later fragment carries no L4 header. (A first fragment does, and
     * its checksum covers the whole datagram, which the incremental update
     * keeps right.) */
    if (ip->frag_off & bpf_htons(0x1fff)) return;
    proto = ip->protocol;
    l4 = (void *)ip + ip->ihl * 4;
    v4 = 1;
  } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = (void *)(eth + 1);
    if ((void *)(ip6 + 1) > end) return;
    proto = ip6->nexthdr;
    l4 = ip6 + 1;
  } else {
    return;
  }

  if (proto == IPPROTO_UDP) {
    struct udphdr *udp = l4;
    if ((void *)(udp + 1) > end) return;
    __be16 old = udp->source;
    udp->source = port_be;
    /* RFC 768: an IPv4 UDP checksum of 0 means "none"; keep it that way. */
    if (v4 && udp->check == 0) return;
    __u16 check = csum_replace16(udp->check, old, port_be);
    /* A computed 0 is sent as all ones; 0 would mean "no checksum". */
    udp->check = check ? check : 0xffff;
  } else if (proto == IPPROTO_TCP) {
    struct tcphdr *tcp = l4;
    if ((void *)(tcp + 1) > end) return;
    __be16 old = tcp->source;
    tcp->source = port_be;
    tcp->check = csum_replace16(tcp->check, old, port_be);
  }
}

SEC("xdp")
int xlb_pktgen(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;

  /* Unconfigured: send nothing rather than redirect to ifindex 0. */
  if (!target_ifindex) return XDP_DROP;

  __u32 key = 0;
  struct xlb_counter *c = bpf_map_lookup_elem(&pktgen_stats, &key);
  if (!c) return XDP_DROP;
  /* The per-CPU count doubles as the flow index, so consecutive frames from
   * one CPU cycle through the flows without a shared (contended) counter. */
  __u64 n = c->packets++;
  c->bytes += end - data;

  if (restore) {
    struct pktgen_template *t = bpf_map_lookup_elem(&pktgen_template, &key);
    if (!t) return XDP_DROP;
    /* 64-bit length: clang 14 otherwise range-checks a copy of it. */
    __u64 len = t->len;
    if (len < sizeof(struct ethhdr) || len > PKTGEN_TEMPLATE_MAX || len != (__u64)(end - data))
      return XDP_DROP;
    if (bpf_xdp_store_bytes(ctx, 0, t->bytes, len)) return XDP_DROP;
    data = (void *)(long)ctx->data;
    end = (void *)(long)ctx->data_end;
  }

  if (flows > 1) set_source_port(data, end, bpf_htons((__u16)(base_sport + n % flows)));

  return bpf_redirect(target_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
