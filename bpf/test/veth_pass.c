/* XDP_PASS and nothing else. A veth only receives frames that its peer sends
 * with XDP_TX or redirects into it when it runs an XDP program itself (GRO
 * alone does not do it on this kernel), so the test topology's router puts
 * this on the veths facing the nodes. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int veth_pass(struct xdp_md *ctx) { return XDP_PASS; }

char LICENSE[] SEC("license") = "GPL";
