/* Every map of the datapath. The XDP and tc objects both include this file;
 * the loader creates the maps with the XDP object and hands the same
 * descriptors to the tc object (bpf_map__reuse_fd), so both programs share
 * one xlb_reverse and one set of counters. Sizes here are defaults: the
 * control plane sets them at load time (BpfObject.setMapMaxEntries). */
#ifndef XLB_MAPS_H
#define XLB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb_abi.h"

#define XLB_MAX_SERVICES 65536

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct xlb_vip_key);
  __type(value, struct xlb_vip);
} xlb_vips SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, XLB_MAX_SERVICES);
  __type(key, struct xlb_frontend_key);
  __type(value, struct xlb_service);
} xlb_frontends SEC(".maps");

/* One Maglev table per service (layout: struct xlb_maglev_entry). Size and
 * both halves live in one inner map; BPF_F_INNER_MAP lets every service have
 * its own M, BPF_F_MMAPABLE lets the control plane write a half with one
 * memory copy and flip halves with one store, instead of a system call per
 * slot. A new inner map (one swap in xlb_maglev) is needed only when M
 * changes. */
struct maglev_inner_table {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 252);
  __uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
  __type(key, __u32);
  __type(value, struct xlb_maglev_entry);
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, XLB_MAX_SERVICES);
  __type(key, __u32);
  __array(values, struct maglev_inner_table);
} xlb_maglev SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct xlb_backend);
} xlb_backends SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 262144);
  __type(key, struct xlb_flow_key);
  __type(value, struct xlb_flow);
} xlb_conntrack SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 262144);
  __type(key, struct xlb_flow_key);
  __type(value, struct xlb_reverse_nat);
} xlb_reverse SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 16384);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct xlb_lpm_key);
  __type(value, __u32);
} xlb_source_ranges SEC(".maps");

/* The next hop towards each remote backend's node, as the FIB gave it
 * (encap.h): per backend id, like xlb_backends, and per CPU so a slot is
 * never read half-written. The datapath's own cache. */
struct nexthop {
  __u32 ifindex;
  __u32 ingress_ifindex; /* valid for frames arriving here */
  __u8 dmac[6];
  __u8 smac[6];
  __u32 generation; /* xlb_flow_cache_gen: a backend that moved invalidates it */
  __u32 checked_jiffies;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct nexthop);
} xlb_nexthops SEC(".maps");

/* Which addresses may be VIPs: one bit per slot of a hash of the address
 * (flowcache.h), set by the control plane for every VIP. A clear bit proves
 * the packet is not for a VIP, so the host's own traffic passes after one
 * array read instead of two hash lookups. */
#define XLB_VIP_FILTER_WORDS 1024

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, XLB_VIP_FILTER_WORDS);
  __type(key, __u32);
  __type(value, __u64);
} xlb_vip_filter SEC(".maps");

/* The flow cache (flowcache.h): per CPU, so a slot is only ever written and
 * read by one CPU and never torn. The loader sets its size (a power of two,
 * xlb_config.flow_cache_size): 64 bytes per slot and CPU. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct xlb_cached_flow);
} xlb_flow_cache SEC(".maps");

/* Slot 0: the flow cache generation. The control plane increments it after
 * any change that could alter a cached verdict other than a backend's state
 * (frontends, source ranges, VIPs, backends' addresses); every cached entry
 * of an older generation is then ignored. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} xlb_flow_cache_gen SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, XLB_MAX_SERVICES);
  __type(key, __u32);
  __type(value, struct xlb_lb_counters);
} xlb_service_stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct xlb_lb_counters);
} xlb_backend_stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, XLB_DROP__COUNT);
  __type(key, __u32);
  __type(value, struct xlb_counter);
} xlb_drops SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, XLB_OUT__COUNT);
  __type(key, __u32);
  __type(value, struct xlb_counter);
} xlb_outcomes SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, XLB_EV__COUNT);
  __type(key, __u32);
  __type(value, struct xlb_counter);
} xlb_events SEC(".maps");

#endif /* XLB_MAPS_H */
