/* Test fixture for the addon: one of each map kind xlb uses, a read-only
 * global that decides the XDP verdict, and programs that expose map contents
 * through packet bytes so tests can see what the kernel sees. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "xlb_abi.h"

XLB_ABI_ANCHOR;

const volatile __u32 fixture_verdict = XDP_PASS;
const volatile __u32 fixture_marker = 0;

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u32);
  __type(value, __u64);
} fixture_hash SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 16);
  __type(key, __u32);
  __type(value, __u64);
} fixture_array SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, struct xlb_counter);
} fixture_percpu SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} fixture_percpu_hash SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 128);
  __type(key, __u64);
  __type(value, __u32);
} fixture_lru SEC(".maps");

struct lpm_v4_key {
  __u32 prefixlen;
  __u32 addr;
};

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 64);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm_v4_key);
  __type(value, __u32);
} fixture_lpm SEC(".maps");

struct inner_table {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 8);
  __type(key, __u32);
  __type(value, __u32);
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 4);
  __type(key, __u32);
  __array(values, struct inner_table);
} fixture_outer SEC(".maps");

/* Counts every packet, then answers with the configured verdict. */
SEC("xdp")
int fixture_xdp(struct xdp_md *ctx) {
  __u32 key = 0;
  struct xlb_counter *c = bpf_map_lookup_elem(&fixture_percpu, &key);
  if (c) {
    c->packets++;
    c->bytes += ctx->data_end - ctx->data;
  }
  return fixture_verdict;
}

/* Writes inner_table[0] of fixture_outer[0] and fixture_marker into the first
 * eight bytes of the packet, so a test reads what the datapath sees after an
 * inner-map swap. */
SEC("xdp")
int fixture_mim(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  __u32 *out = data;
  if ((void *)(out + 2) > end) return XDP_ABORTED;
  __u32 key = 0;
  void *inner = bpf_map_lookup_elem(&fixture_outer, &key);
  if (!inner) return XDP_DROP;
  __u32 *v = bpf_map_lookup_elem(inner, &key);
  if (!v) return XDP_DROP;
  out[0] = *v;
  out[1] = fixture_marker;
  return XDP_TX;
}

SEC("tc")
int fixture_tc(struct __sk_buff *skb) {
  __u32 key = 1;
  struct xlb_counter *c = bpf_map_lookup_elem(&fixture_percpu, &key);
  if (c) {
    c->packets++;
    c->bytes += skb->len;
  }
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
