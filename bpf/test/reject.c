/* A program the verifier must refuse: it reads packet data without checking
 * the bounds first. Tests use it to check that a rejection reaches
 * TypeScript with the verifier's log attached. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int reject_unbounded_read(struct xdp_md *ctx) {
  unsigned char *data = (void *)(long)ctx->data;
  return data[20] == 0x45 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
