/* XDP entry point on the node's uplink: the load balancer's packet walk.
 *
 *   not IP / not for a VIP ............................ XDP_PASS, untouched
 *   IPIP / IPv6-in-IPv6 to this node .................. decapsulate, then as below,
 *                                                       delivered on this node only
 *   VIP: fragment, bad extension, TTL <= 1, bad header  XDP_DROP (reason counted)
 *   VIP: ICMP fragmentation-needed / packet-too-big ... to the backend owning the
 *                                                       quoted flow
 *   VIP: TCP/UDP, this CPU's flow cache holds the flow ... its backend, as below
 *   VIP: TCP/UDP -> frontend -> source ranges -> conntrack or Maglev -> backend
 *        backend on this node ......................... DNAT, XDP_PASS (the CNI
 *                                                       routes it to the pod)
 *        backend elsewhere ............................ IPIP / IPv6-in-IPv6 to its
 *                                                       node, XDP_TX or redirect
 *        too big to encapsulate ....................... ICMP too-big back (DF), or drop
 *
 * Every packet ends in exactly one xlb_outcomes or xlb_drops slot. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb_abi.h"
#include "config.h"
#include "counters.h"
#include "encap.h"
#include "flowcache.h"
#include "icmp.h"
#include "lb.h"
#include "maps.h"
#include "nat.h"
#include "parse.h"

XLB_ABI_ANCHOR;

struct verdict {
  int action;
  int outcome; /* enum xlb_outcome, or -1 */
  int drop;    /* enum xlb_drop, or -1 */
};

static __always_inline int finish(struct verdict *v, __u64 bytes) {
  if (v->drop >= 0) {
    counter_add(&xlb_drops, v->drop, bytes);
    return XDP_DROP;
  }
  counter_add(&xlb_outcomes, v->outcome, bytes);
  return v->action;
}

static __always_inline void drop(struct verdict *v, enum xlb_drop reason) {
  v->action = XDP_DROP;
  v->drop = reason;
}

static __always_inline void outcome(struct verdict *v, int action, enum xlb_outcome o) {
  v->action = action;
  v->outcome = o;
}

static __always_inline void not_vip(struct verdict *v, int decapsulated) {
  if (decapsulated)
    drop(v, XLB_DROP_DECAP_NOT_VIP);
  else
    outcome(v, XDP_PASS, XLB_OUT_PASS_NOT_VIP);
}

/* The hash an IPv6 outer header carries as its flow label (IPv4: none). */
static __always_inline __u32 outer_hash(const struct packet *p, const struct xlb_flow_key *flow,
                                        const struct xlb_service *svc) {
  return p->family == XLB_FAMILY_IPV6 ? hash_flow(flow, svc) : 0;
}

/* Sends the current frame to `node` in a tunnel, or answers too-big. */
static __always_inline void tunnel(struct xdp_md *ctx, struct packet *p,
                                   const struct xlb_backend *b, __u32 backend_id, __u32 hash,
                                   __u32 generation, int icmp_ok, struct verdict *v) {
  if (p->l3_len + encap_overhead(p->family) > xlb_config.mtu) {
    int df = 1;
    if (p->family == XLB_FAMILY_IPV4) {
      struct iphdr *ip = p->data + (p->l3_off & XLB_OFF_MASK);
      if ((void *)(ip + 1) > p->data_end) return drop(v, XLB_DROP_MALFORMED);
      df = (bpf_ntohs(ip->frag_off) & IPV4_DF) != 0;
    }
    if (icmp_ok && df && (xlb_config.flags & XLB_CONFIG_F_ICMP_TOO_BIG)) {
      if (!send_too_big(ctx, p)) return drop(v, XLB_DROP_HEADROOM);
      return outcome(v, XDP_TX, XLB_OUT_ICMP_TOO_BIG);
    }
    return drop(v, XLB_DROP_TOO_BIG);
  }
  if (!encapsulate(ctx, p, b->node_addr, hash)) return drop(v, XLB_DROP_HEADROOM);
  v->action = fib_forward(ctx, p->family, backend_id, generation, &v->outcome, &v->drop);
}

/* An ICMP error sent to a VIP: deliver it to whoever owns the quoted flow. */
static __always_inline void icmp_error(struct xdp_md *ctx, struct packet *p, int decapsulated,
                                       __u32 generation, struct verdict *v) {
  struct icmp_quote q = {};
  if (!parse_quote(p, &q)) return drop(v, XLB_DROP_ICMP_UNMATCHED);
  struct xlb_service *svc = frontend_lookup(q.flow.dst, q.flow.dport_be, q.flow.proto, p->family);
  if (!svc) return drop(v, XLB_DROP_ICMP_UNMATCHED);
  struct selection sel = {};
  if (!select_backend(&q.flow, svc, 0, &sel, p->len)) return drop(v, XLB_DROP_NO_BACKEND);
  if (sel.backend->family != p->family) return drop(v, XLB_DROP_NO_BACKEND);
  if (sel.backend->flags & XLB_BACKEND_F_LOCAL) {
    if (!icmp_to_pod(p, &q, sel.backend)) return drop(v, XLB_DROP_MALFORMED);
    return outcome(v, XDP_PASS, XLB_OUT_ICMP_LOCAL);
  }
  if (decapsulated) return drop(v, XLB_DROP_DECAP_NOT_LOCAL);
  tunnel(ctx, p, sel.backend, sel.backend_id, outer_hash(p, &q.flow, svc), generation, 0, v);
  /* Counted only when it really goes on (not too big, routable). */
  if (v->drop < 0) count_event(XLB_EV_ICMP_ENCAP, p->len);
}

/* A flow whose verdict this CPU cached: the same backend, with no hash
 * lookup. Returns 0, before touching the frame, when the full path must
 * decide instead. */
static __always_inline int cached(struct xdp_md *ctx, struct packet *p, int decapsulated,
                                  __u32 generation, struct verdict *v) {
  struct xlb_cached_flow *c = flow_cache_get(&p->key, generation);
  if (!c) return 0;
  __u32 backend_id = c->backend_id, service_id = c->service_id, hash = c->hash;
  struct xlb_backend *b = live_backend(backend_id);
  if (!b || b->family != p->family) return 0;
  if (b->flags & XLB_BACKEND_F_LOCAL) {
    if (!dnat(p, b->addr, b->port_be))
      drop(v, XLB_DROP_MALFORMED);
    else
      outcome(v, XDP_PASS, XLB_OUT_LOCAL);
  } else {
    if (decapsulated || p->l3_len + encap_overhead(p->family) > xlb_config.mtu) return 0;
    tunnel(ctx, p, b, backend_id, hash, generation, 0, v);
  }
  count_event(XLB_EV_FLOW_CACHE_HIT, p->len);
  lb_count(&xlb_service_stats, service_id, p->len, 0);
  lb_count(&xlb_backend_stats, backend_id, p->len, 0);
  return 1;
}

/* Traffic addressed to a VIP. svc is its frontend's service when the caller
 * already found it (TCP/UDP with readable ports), else 0. */
static __always_inline void balance(struct xdp_md *ctx, struct packet *p, struct xlb_service *svc,
                                    int decapsulated, __u32 generation, struct verdict *v) {
  if (p->fragment) return drop(v, XLB_DROP_FRAGMENT);
  if (p->ext_unsupported) return drop(v, XLB_DROP_IPV6_EXTENSION);
  if (p->ttl <= 1) return drop(v, XLB_DROP_TTL_EXPIRED);
  if (p->options) count_event(XLB_EV_IPV4_OPTIONS, p->len);

  if (p->l4_proto == IPPROTO_ICMP || p->l4_proto == IPPROTO_ICMPV6) {
    if ((p->l4_proto == IPPROTO_ICMP) != (p->family == XLB_FAMILY_IPV4))
      return drop(v, XLB_DROP_UNSUPPORTED_PROTO);
    enum icmp_kind kind = icmp_kind(p);
    if (kind == ICMP_KIND_INVALID) return drop(v, XLB_DROP_MALFORMED);
    if (kind != ICMP_KIND_TOO_BIG) return drop(v, XLB_DROP_UNSUPPORTED_PROTO);
    return icmp_error(ctx, p, decapsulated, generation, v);
  }
  if (!svc) {
    if (p->l4_proto != IPPROTO_TCP && p->l4_proto != IPPROTO_UDP)
      return drop(v, XLB_DROP_UNSUPPORTED_PROTO);
    if (parse_ports(p) != PARSE_OK) return drop(v, XLB_DROP_MALFORMED);
    return drop(v, XLB_DROP_NO_FRONTEND);
  }
  if (!source_allowed(svc, p->key.src, p->family)) return drop(v, XLB_DROP_SOURCE_RANGE);

  struct selection sel = {};
  if (!select_backend(&p->key, svc, 1, &sel, p->len)) return drop(v, XLB_DROP_NO_BACKEND);
  struct xlb_backend *b = sel.backend;
  if (b->family != p->family) return drop(v, XLB_DROP_NO_BACKEND);
  lb_count(&xlb_service_stats, svc->id, p->len, sel.new_flow);
  lb_count(&xlb_backend_stats, sel.backend_id, p->len, sel.new_flow);

  if (b->flags & XLB_BACKEND_F_LOCAL) {
    /* Session affinity pins the client, not the connection: a new connection
     * of a pinned client hits its entry yet needs a reverse entry of its own. */
    if (sel.new_flow || sel.refreshed)
      record_reverse(&p->key, b, svc->id, 0);
    else if (svc->flags & XLB_SERVICE_F_AFFINITY)
      record_reverse(&p->key, b, svc->id, 1);
    if (!dnat(p, b->addr, b->port_be)) return drop(v, XLB_DROP_MALFORMED);
    flow_cache_put(&p->key, generation, svc, sel.backend_id, 0);
    return outcome(v, XDP_PASS, XLB_OUT_LOCAL);
  }
  if (decapsulated) return drop(v, XLB_DROP_DECAP_NOT_LOCAL);
  __u32 hash = outer_hash(p, &p->key, svc);
  tunnel(ctx, p, b, sel.backend_id, hash, generation, 1, v);
  if (v->drop < 0 && v->outcome != XLB_OUT_ICMP_TOO_BIG)
    flow_cache_put(&p->key, generation, svc, sel.backend_id, hash);
}

SEC("xdp")
int xlb_xdp(struct xdp_md *ctx) {
  struct verdict v = {.action = XDP_PASS, .outcome = -1, .drop = -1};
  struct packet p;
  packet_init(&p, (void *)(long)ctx->data, (void *)(long)ctx->data_end);
  __u64 bytes = p.len;

  enum parse_result r = parse_l2(&p);
  if (r != PARSE_OK) {
    outcome(&v, XDP_PASS, r == PARSE_NOT_IP ? XLB_OUT_PASS_NOT_IP : XLB_OUT_PASS_UNPARSED);
    return finish(&v, bytes);
  }
  if (parse_l3(&p) != PARSE_OK) {
    outcome(&v, XDP_PASS, XLB_OUT_PASS_UNPARSED);
    return finish(&v, bytes);
  }

  int decapsulated = 0;
  if (for_decap(&p)) {
    if (p.fragment) {
      drop(&v, XLB_DROP_FRAGMENT);
      return finish(&v, bytes);
    }
    if (!decapsulate(ctx, &p)) {
      drop(&v, XLB_DROP_HEADROOM);
      return finish(&v, bytes);
    }
    count_event(XLB_EV_DECAPSULATED, bytes);
    decapsulated = 1;
    packet_init(&p, (void *)(long)ctx->data, (void *)(long)ctx->data_end);
    if (parse_l2(&p) != PARSE_OK || parse_l3(&p) != PARSE_OK) {
      drop(&v, XLB_DROP_MALFORMED);
      return finish(&v, bytes);
    }
  }

  if (!vip_maybe(p.key.dst)) {
    not_vip(&v, decapsulated);
    return finish(&v, bytes);
  }
  /* Read before any lookup, so a change made meanwhile outdates what this
   * packet puts in the cache. */
  __u32 generation = flow_cache_generation();
  int ports = (p.l4_proto == IPPROTO_TCP || p.l4_proto == IPPROTO_UDP) && !p.fragment &&
              parse_ports(&p) == PARSE_OK;
  /* Packets the full path would drop or count specially never take the
   * cached verdict. */
  if (ports && !p.ext_unsupported && !p.options && p.ttl > 1 &&
      cached(ctx, &p, decapsulated, generation, &v))
    return finish(&v, bytes);

  /* A TCP or UDP packet that matches a frontend is for a VIP. Only a miss
   * asks xlb_vips whether to drop it (a VIP port nobody serves) or let it
   * pass (not a VIP at all: the filter is only a first sieve). */
  struct xlb_service *svc = 0;
  if (ports) svc = frontend_lookup(p.key.dst, p.key.dport_be, p.key.proto, p.family);
  if (!svc && !vip_lookup(p.key.dst, p.family)) {
    not_vip(&v, decapsulated);
    return finish(&v, bytes);
  }
  balance(ctx, &p, svc, decapsulated, generation, &v);
  return finish(&v, bytes);
}

char LICENSE[] SEC("license") = "GPL";
