/* The flow hash: Bob Jenkins' lookup3 hashword() ("jhash2"), seeded with
 * xlb_config.hash_seed. Every node uses the same seed, so every node maps a
 * flow to the same Maglev slot. control/datapath/flowhash.ts computes the
 * same function; a test holds the two together. */
#ifndef XLB_HASH_H
#define XLB_HASH_H

#include <linux/types.h>

#include "xlb_abi.h"

#define XLB_JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 rol32(__u32 v, int s) { return (v << s) | (v >> (32 - s)); }

#define XLB_JHASH_MIX(a, b, c) \
  {                            \
    a -= c;                    \
    a ^= rol32(c, 4);          \
    c += b;                    \
    b -= a;                    \
    b ^= rol32(a, 6);          \
    a += c;                    \
    c -= b;                    \
    c ^= rol32(b, 8);          \
    b += a;                    \
    a -= c;                    \
    a ^= rol32(c, 16);         \
    c += b;                    \
    b -= a;                    \
    b ^= rol32(a, 19);         \
    a += c;                    \
    c -= b;                    \
    c ^= rol32(b, 4);          \
    b += a;                    \
  }

#define XLB_JHASH_FINAL(a, b, c) \
  {                              \
    c ^= b;                      \
    c -= rol32(b, 14);           \
    a ^= c;                      \
    a -= rol32(c, 11);           \
    b ^= a;                      \
    b -= rol32(a, 25);           \
    c ^= b;                      \
    c -= rol32(b, 16);           \
    a ^= c;                      \
    a -= rol32(c, 4);            \
    b ^= a;                      \
    b -= rol32(a, 14);           \
    c ^= b;                      \
    c -= rol32(b, 24);           \
  }

/* Hash of a flow key's 40 bytes, read as ten host-order 32-bit words. The
 * caller zeroes what must not count (the destination always; for session
 * affinity everything but the client address and family). */
_Static_assert(sizeof(struct xlb_flow_key) == 40, "flow_hash reads ten words");

static __always_inline __u32 flow_hash(const struct xlb_flow_key *key, __u32 seed) {
  const __u32 *k = (const __u32 *)key;
  __u32 a, b, c;
  a = b = c = XLB_JHASH_INITVAL + (10 << 2) + seed;
  a += k[0];
  b += k[1];
  c += k[2];
  XLB_JHASH_MIX(a, b, c);
  a += k[3];
  b += k[4];
  c += k[5];
  XLB_JHASH_MIX(a, b, c);
  a += k[6];
  b += k[7];
  c += k[8];
  XLB_JHASH_MIX(a, b, c);
  a += k[9];
  XLB_JHASH_FINAL(a, b, c);
  return c;
}

#endif /* XLB_HASH_H */
