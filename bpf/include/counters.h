/* Counting helpers. Per-CPU maps, so the hot path never contends on a cache
 * line; the control plane sums the CPUs. */
#ifndef XLB_COUNTERS_H
#define XLB_COUNTERS_H

#include "maps.h"

static __always_inline void counter_add(void *map, __u32 slot, __u64 bytes) {
  struct xlb_counter *c = bpf_map_lookup_elem(map, &slot);
  if (!c) return;
  c->packets++;
  c->bytes += bytes;
}

static __always_inline void count_event(enum xlb_event ev, __u64 bytes) {
  counter_add(&xlb_events, ev, bytes);
}

static __always_inline void lb_count(void *map, __u32 id, __u64 bytes, int new_flow) {
  struct xlb_lb_counters *c = bpf_map_lookup_elem(map, &id);
  if (!c) return;
  c->packets++;
  c->bytes += bytes;
  c->new_flows += new_flow;
}

#endif /* XLB_COUNTERS_H */
