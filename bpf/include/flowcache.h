/* The two shortcuts in front of the hash maps. On this kind of machine a
 * hash map lookup is a function call (and a key compare, another call) that
 * costs more than everything else a connection-table hit does, so:
 *
 *   - xlb_vip_filter answers "certainly not a VIP" from one array word, and
 *     the host's own traffic passes without any hash lookup;
 *   - xlb_flow_cache remembers, per CPU and direct-mapped, the verdict the
 *     full path reached for a flow, and a hit replaces the frontend and
 *     connection-table lookups with array reads.
 *
 * A cached verdict is used only while (1) its generation is the current
 * xlb_flow_cache_gen, which the control plane bumps on every change that
 * could alter a verdict, (2) it is younger than a second (xlb_config.hz
 * jiffies; with session affinity, half the timeout if that is shorter),
 * after which the full path runs again and renews the connection table's
 * entry, the reverse NAT entry and the affinity timestamp, and (3) its
 * backend is still alive, read on every packet. control/datapath/
 * flowcache.ts computes the same filter bit and cache slot. */
#ifndef XLB_FLOWCACHE_H
#define XLB_FLOWCACHE_H

#include <bpf/bpf_helpers.h>

#include "config.h"
#include "maps.h"

/* Fibonacci hashing of the address words folded together (an IPv4 address
 * has three zero words, so both families use one formula). */
static __always_inline __u32 vip_filter_bit(const __u8 *addr) {
  const __u32 *w = (const __u32 *)addr;
  __u32 x = w[0] ^ w[1] ^ w[2] ^ w[3];
  return (x * 0x9e3779b1u) >> 16;
}

static __always_inline int vip_maybe(const __u8 *addr) {
  __u32 bit = vip_filter_bit(addr);
  __u32 word = bit >> 6;
  __u64 *w = bpf_map_lookup_elem(&xlb_vip_filter, &word);
  return w && ((*w >> (bit & 63)) & 1);
}

/* Cheap multiplicative mix: a collision only costs a trip through the
 * full path, so speed matters more than quality here. */
static __always_inline __u32 flow_cache_slot(const struct xlb_flow_key *k) {
  const __u32 *w = (const __u32 *)k;
  __u32 a = w[0] ^ w[1] ^ w[2] ^ w[3];
  __u32 b = w[4] ^ w[5] ^ w[6] ^ w[7];
  __u32 h = (a * 0x9e3779b1u) ^ (b * 0x85ebca77u) ^ (w[8] * 0xc2b2ae3du) ^ w[9];
  h ^= h >> 15;
  return h & (xlb_config.flow_cache_size - 1);
}

static __always_inline int flow_key_equal(const struct xlb_flow_key *a,
                                          const struct xlb_flow_key *b) {
  const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
  return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

static __always_inline __u32 flow_cache_generation(void) {
  __u32 zero = 0;
  __u32 *gen = bpf_map_lookup_elem(&xlb_flow_cache_gen, &zero);
  return gen ? *gen : 0;
}

/* Jiffies, low 32 bits: ages up to a few seconds compare correctly across
 * the wrap with unsigned subtraction. */
static __always_inline __u32 jiffies32(void) { return (__u32)bpf_jiffies64(); }

/* The flow's cached verdict, or 0. */
static __always_inline struct xlb_cached_flow *flow_cache_get(const struct xlb_flow_key *k,
                                                              __u32 generation) {
  __u32 slot = flow_cache_slot(k);
  struct xlb_cached_flow *c = bpf_map_lookup_elem(&xlb_flow_cache, &slot);
  if (!c || c->generation != generation || !flow_key_equal(&c->key, k)) return 0;
  if (jiffies32() - c->checked_jiffies >= c->lifetime_jiffies) return 0;
  return c;
}

/* Records the full path's verdict for the flow. `generation` must be the one
 * read before the full path looked anything up: a change the control plane
 * made meanwhile then invalidates this entry instead of hiding behind it. */
static __always_inline void flow_cache_put(const struct xlb_flow_key *k, __u32 generation,
                                           const struct xlb_service *svc, __u32 backend_id,
                                           __u32 hash) {
  /* With session affinity the full path must run at least twice per timeout
   * to keep an active client's entry from expiring (0: every packet). */
  __u32 lifetime = xlb_config.hz;
  if (svc->flags & XLB_SERVICE_F_AFFINITY) {
    __u32 half = svc->affinity_timeout_s * xlb_config.hz / 2;
    if (half < lifetime) lifetime = half;
  }
  __u32 slot = flow_cache_slot(k);
  struct xlb_cached_flow *c = bpf_map_lookup_elem(&xlb_flow_cache, &slot);
  if (!c) return;
  c->key = *k;
  c->backend_id = backend_id;
  c->service_id = svc->id;
  c->hash = hash;
  c->generation = generation;
  c->checked_jiffies = jiffies32();
  c->lifetime_jiffies = lifetime;
}

#endif /* XLB_FLOWCACHE_H */
