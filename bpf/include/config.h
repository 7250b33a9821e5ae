/* The load-time settings, one read-only global per object. */
#ifndef XLB_CONFIG_H
#define XLB_CONFIG_H

#include "xlb_abi.h"

const volatile struct xlb_config xlb_config = {
    .abi_version = XLB_ABI_VERSION,
    .mtu = 1500,
    .flags = XLB_CONFIG_F_DECAP | XLB_CONFIG_F_ICMP_TOO_BIG,
    .hz = 100,
    .flow_cache_size = 65536,
};

#endif /* XLB_CONFIG_H */
