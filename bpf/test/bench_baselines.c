/* Baseline receivers for the veth benchmarks (bench/pktgen/veth-bench.ts):
 * the least a program on the receiving end can do for each verdict. A
 * datapath figure means something only next to what the same path costs
 * with (almost) no program work, measured in the same run.
 *
 * Each program counts the frames it processed in its own slot of a per-CPU
 * array, so the harness reads how many frames the receiver really handled
 * instead of trusting what the generator sent. Optionally (capture_frames)
 * they keep copies of the frames' first bytes so a test can inspect exactly
 * what arrived. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb_abi.h"

XLB_ABI_ANCHOR;

/* bench_redirect's target; 0 turns it into XDP_TX (back out of the
 * receiving interface). */
const volatile __u32 redirect_ifindex = 0;
/* 0: no capture (the verifier drops the code). N > 0: frame i processed on a
 * CPU is copied into slot i % N of bench_frames, N <= BENCH_CAPTURE_SLOTS. */
const volatile __u32 capture_frames = 0;

/* Slots of bench_stats, one per program, so programs from one object can sit
 * on different interfaces without mixing their counts. */
enum bench_slot {
  BENCH_SLOT_DROP = 0,
  BENCH_SLOT_REDIRECT = 1,
  BENCH_SLOT_PASS = 2,
  BENCH_SLOT__COUNT = 3,
};

#define BENCH_CAPTURE_SLOTS 256
#define BENCH_CAPTURE_BYTES 128

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, BENCH_SLOT__COUNT);
  __type(key, __u32);
  __type(value, struct xlb_counter);
} bench_stats SEC(".maps");

struct bench_frame {
  __u32 len;   /* the frame's whole length */
  __u32 saved; /* bytes copied into data: min(len, BENCH_CAPTURE_BYTES) */
  __u8 data[BENCH_CAPTURE_BYTES];
};

/* Shared (not per CPU) so the harness reads one array; a frame processed on
 * another CPU may overwrite a slot, which only loses a sample. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, BENCH_CAPTURE_SLOTS);
  __type(key, __u32);
  __type(value, struct bench_frame);
} bench_frames SEC(".maps");

static __always_inline void capture(struct xdp_md *ctx, __u64 n, __u64 len) {
  __u32 key = n % capture_frames;
  struct bench_frame *f = bpf_map_lookup_elem(&bench_frames, &key);
  if (!f) return;
  f->len = len;
  f->saved = 0;
  /* The helper checks the frame's bounds itself; the verifier wants the
   * length proven to fit the map value and non-zero. 64-bit on purpose: with
   * a 32-bit length clang checks a zero-extended copy and passes the
   * unchecked register, which the verifier refuses. */
  __u64 saved = len < BENCH_CAPTURE_BYTES ? len : BENCH_CAPTURE_BYTES;
  if (saved < 1 || saved > BENCH_CAPTURE_BYTES) return;
  if (bpf_xdp_load_bytes(ctx, 0, f->data, saved) == 0) f->saved = saved;
}

static __always_inline void count(struct xdp_md *ctx, enum bench_slot slot) {
  __u32 key = slot;
  struct xlb_counter *c = bpf_map_lookup_elem(&bench_stats, &key);
  if (!c) return;
  __u64 len = ctx->data_end - ctx->data;
  __u64 n = c->packets++;
  c->bytes += len;
  if (capture_frames) capture(ctx, n, len);
}

SEC("xdp")
int bench_drop(struct xdp_md *ctx) {
  count(ctx, BENCH_SLOT_DROP);
  return XDP_DROP;
}

SEC("xdp")
int bench_redirect(struct xdp_md *ctx) {
  count(ctx, BENCH_SLOT_REDIRECT);
  if (!redirect_ifindex) return XDP_TX;
  return bpf_redirect(redirect_ifindex, 0);
}

SEC("xdp")
int bench_pass(struct xdp_md *ctx) {
  count(ctx, BENCH_SLOT_PASS);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
