/* Internet checksum arithmetic (RFC 1071) and incremental updates
 * (RFC 1624): rewriting an address or a port adjusts the existing checksum
 * instead of summing the whole packet again. */
#ifndef XLB_CSUM_H
#define XLB_CSUM_H

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

static __always_inline __u16 csum_fold(__u64 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)~sum;
}

/* Adds a 16-bit word to a partial (unfolded) sum. */
static __always_inline __u64 csum_add16(__u64 sum, __u16 v) { return sum + v; }

/* The checksum field after replacing `old` with `new` (both 16-bit words as
 * stored in the packet). */
static __always_inline __u16 csum_replace2(__u16 check, __u16 old, __u16 new) {
  __u64 sum = (__u16)~check;
  sum += (__u16)~old;
  sum += new;
  return csum_fold(sum);
}

static __always_inline __u16 csum_replace4(__u16 check, __u32 old, __u32 new) {
  __u64 sum = (__u16)~check;
  sum += (__u16) ~(old & 0xffff);
  sum += (__u16) ~(old >> 16);
  sum += new & 0xffff;
  sum += new >> 16;
  return csum_fold(sum);
}

/* Replacing n 32-bit words (n <= 4: an IPv6 address). */
static __always_inline __u16 csum_replace_words(__u16 check, const __u32 *old, const __u32 *new,
                                                int n) {
  __u64 sum = (__u16)~check;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    if (i >= n) break;
    sum += (__u16) ~(old[i] & 0xffff);
    sum += (__u16) ~(old[i] >> 16);
    sum += new[i] & 0xffff;
    sum += new[i] >> 16;
  }
  return csum_fold(sum);
}

/* Most 16-bit words csum_partial_words() sums: an ICMPv6 header and its
 * 128-byte quote (68 words) must fit. */
#define CSUM_MAX_WORDS 72

/* Sum of n bytes (n even, bounded by the caller) starting at p, which the
 * caller has checked lies inside the packet. */
static __always_inline __u64 csum_partial_words(const __u16 *p, int words) {
  __u64 sum = 0;
#pragma unroll
  for (int i = 0; i < CSUM_MAX_WORDS; i++) {
    if (i >= words) break;
    sum += p[i];
  }
  return sum;
}

#endif /* XLB_CSUM_H */
