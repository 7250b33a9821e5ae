/* Balancing decisions: is it for a VIP, which service, may this source
 * connect, and which backend gets the flow. No packet bytes change here. */
#ifndef XLB_LB_H
#define XLB_LB_H

#include <bpf/bpf_helpers.h>

#include "config.h"
#include "counters.h"
#include "hash.h"
#include "maps.h"
#include "parse.h"

#define NSEC_PER_SEC 1000000000ULL

static __always_inline struct xlb_vip *vip_lookup(const __u8 *addr, __u8 family) {
  struct xlb_vip_key k = {.family = family};
  __builtin_memcpy(k.addr, addr, 16);
  return bpf_map_lookup_elem(&xlb_vips, &k);
}

static __always_inline struct xlb_service *frontend_lookup(const __u8 *vip, __be16 port_be,
                                                           __u8 proto, __u8 family) {
  struct xlb_frontend_key k = {.port_be = port_be, .proto = proto, .family = family};
  __builtin_memcpy(k.addr, vip, 16);
  return bpf_map_lookup_elem(&xlb_frontends, &k);
}

static __always_inline int source_allowed(const struct xlb_service *svc, const __u8 *src,
                                          __u8 family) {
  if (!(svc->flags & XLB_SERVICE_F_SOURCE_RANGES)) return 1;
  struct xlb_lpm_key k = {
      .prefixlen = 64 + (family == XLB_FAMILY_IPV4 ? 32 : 128),
      .service_id = svc->id,
      .family = family,
  };
  __builtin_memcpy(k.addr, src, 16);
  return bpf_map_lookup_elem(&xlb_source_ranges, &k) != 0;
}

struct selection {
  __u32 backend_id;
  struct xlb_backend *backend;
  __u8 new_flow;  /* no conntrack entry was used */
  __u8 refreshed; /* the conntrack entry's timestamp was renewed */
};

/* The conntrack key of a flow: the 5-tuple, or for session affinity the
 * client, the frontend and the protocol (any source port). */
static __always_inline void conntrack_key(struct xlb_flow_key *ck, const struct xlb_flow_key *flow,
                                          const struct xlb_service *svc) {
  *ck = *flow;
  if (svc->flags & XLB_SERVICE_F_AFFINITY) ck->sport_be = 0;
}

/* What the flow hash covers: never the destination (the table is already
 * per service); with session affinity only the client address. */
static __always_inline __u32 hash_flow(const struct xlb_flow_key *flow,
                                       const struct xlb_service *svc) {
  struct xlb_flow_key hk = {.family = flow->family};
  __builtin_memcpy(hk.src, flow->src, 16);
  if (!(svc->flags & XLB_SERVICE_F_AFFINITY)) {
    hk.sport_be = flow->sport_be;
    hk.dport_be = flow->dport_be;
    hk.proto = flow->proto;
  }
  return flow_hash(&hk, xlb_config.hash_seed);
}

static __always_inline struct xlb_backend *live_backend(__u32 id) {
  struct xlb_backend *b = bpf_map_lookup_elem(&xlb_backends, &id);
  return b && b->state != XLB_BACKEND_GONE ? b : 0;
}

/* The service's Maglev pick for this flow, or 0 when it has no backend. */
static __always_inline struct xlb_backend *maglev_pick(const struct xlb_flow_key *flow,
                                                       const struct xlb_service *svc, __u32 *id) {
  __u32 key = svc->id;
  void *table = bpf_map_lookup_elem(&xlb_maglev, &key);
  if (!table) return 0;
  key = 0;
  struct xlb_maglev_entry *header = bpf_map_lookup_elem(table, &key);
  if (!header || header->word0 == 0) return 0;
  __u32 half = *(volatile __u32 *)&header->word1 & 1;
  key = 1 + hash_flow(flow, svc) % header->word0;
  struct xlb_maglev_entry *slot = bpf_map_lookup_elem(table, &key);
  if (!slot) return 0;
  /* The id's address depends on the half read above, which orders this load
   * after it (an address dependency): a flipped half is never read with the
   * slots from before the control plane filled it. */
  *id = *((__u32 *)slot + half);
  return live_backend(*id);
}

/* Picks the flow's backend: its conntrack entry while that backend lives
 * (and, with session affinity, while the entry is younger than the
 * timeout); otherwise the Maglev table, recording the choice when `record`.
 * Returns 0 when the service has no backend for it. */
static __always_inline int select_backend(const struct xlb_flow_key *flow,
                                          const struct xlb_service *svc, int record,
                                          struct selection *sel, __u64 bytes) {
  struct xlb_flow_key ck;
  conntrack_key(&ck, flow, svc);
  /* Jiffies resolution is plenty for one-second refreshes and affinity
   * timeouts, and much cheaper than a precise clock read per packet. */
  __u64 now = bpf_ktime_get_coarse_ns();
  int affinity = svc->flags & XLB_SERVICE_F_AFFINITY;
  struct xlb_flow *ct = bpf_map_lookup_elem(&xlb_conntrack, &ck);
  if (ct && ct->service_id == svc->id) {
    if (affinity && now - ct->last_seen_ns >= svc->affinity_timeout_s * NSEC_PER_SEC) {
      count_event(XLB_EV_AFFINITY_EXPIRED, bytes);
    } else {
      struct xlb_backend *b = live_backend(ct->backend_id);
      if (b) {
        count_event(affinity ? XLB_EV_AFFINITY_HIT : XLB_EV_CONNTRACK_HIT, bytes);
        sel->backend_id = ct->backend_id;
        sel->backend = b;
        sel->new_flow = 0;
        /* Renewing costs a cache-line write; once a second keeps the reverse
         * entries fresh, and twice per timeout an active client's pin. */
        __u64 refresh = NSEC_PER_SEC;
        if (affinity && svc->affinity_timeout_s * NSEC_PER_SEC / 2 < refresh)
          refresh = svc->affinity_timeout_s * NSEC_PER_SEC / 2;
        if (record && now - ct->last_seen_ns > refresh) {
          ct->last_seen_ns = now;
          sel->refreshed = 1;
        }
        return 1;
      }
      count_event(XLB_EV_BACKEND_GONE, bytes);
    }
  }
  count_event(XLB_EV_CONNTRACK_MISS, bytes);
  __u32 id = 0;
  struct xlb_backend *b = maglev_pick(flow, svc, &id);
  if (!b) return 0;
  sel->backend_id = id;
  sel->backend = b;
  sel->new_flow = 1;
  if (record) {
    struct xlb_flow entry = {.backend_id = id, .service_id = svc->id, .last_seen_ns = now};
    bpf_map_update_elem(&xlb_conntrack, &ck, &entry, BPF_ANY);
  }
  return 1;
}

#endif /* XLB_LB_H */
