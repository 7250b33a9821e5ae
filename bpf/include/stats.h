/* Per-CPU counters, one slot per enum xlb_stat. Per-CPU so the hot path
 * never contends on a cache line; the control plane sums the CPUs. */
#ifndef XLB_STATS_H
#define XLB_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb_abi.h"

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, XLB_STAT__COUNT);
  __type(key, __u32);
  __type(value, struct xlb_counter);
} xlb_stats SEC(".maps");

static __always_inline void stat_add(enum xlb_stat stat, __u64 bytes) {
  __u32 key = stat;
  struct xlb_counter *c = bpf_map_lookup_elem(&xlb_stats, &key);
  if (!c) return;
  c->packets++;
  c->bytes += bytes;
}

#endif /* XLB_STATS_H */
