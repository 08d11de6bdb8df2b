/* Shared by Loom's BPF programs: the bits vmlinux.h does not carry (macros from uapi headers). */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define ETH_P_IP 0x0800
#define ETH_HLEN 14
#define ETH_ALEN 6

#ifndef BPF_F_NO_PREALLOC
#define BPF_F_NO_PREALLOC (1U << 0)
#endif

/* Direct-action verdicts: UNSPEC lets the next tc filter on the hook run (OK would end the chain). */
#define TC_ACT_UNSPEC (-1)

#define AF_INET 2

/*
 * lb4's service loopback (Cilium's 169.254.42.1): the source of a pod's packet to its own Service when it is its own
 * backend (hairpin); policy.c lets it into the pod as traffic from the node.
 */
#define LOOM_SVC_LOOPBACK bpf_htonl(0xa9fe2a01)
