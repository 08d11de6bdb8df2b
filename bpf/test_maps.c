// SPDX-License-Identifier: GPL-2.0
/*
 * Test object for Loom's BPF layer: one map of each type the C# side supports, with struct keys and
 * values, and a trivial tc program that counts packets per ingress ifindex in a per-CPU array and
 * lets every packet pass. The layouts are mirrored by tests/Loom.Linux.Tests/Bpf/TestMaps.cs.
 */
#include "loom_common.h"

struct test_key {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct test_value {
	__u64 packets;
	__u64 bytes;
	__u32 flags;
	__u32 pad;
};

struct pkt_count {
	__u64 packets;
	__u64 bytes;
};

struct lpm_v4_key {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct test_key);
	__type(value, struct test_value);
} test_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct test_key);
	__type(value, struct test_value);
} test_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct test_value);
} test_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
} test_lpm SEC(".maps");

/* Indexed by ifindex (ifindexes inside a fresh test namespace are small). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct pkt_count);
} pkt_counts SEC(".maps");

SEC("tc")
int count_packets(struct __sk_buff *skb)
{
	__u32 idx = skb->ifindex;
	struct pkt_count *c = bpf_map_lookup_elem(&pkt_counts, &idx);

	if (c) {
		/* Per-CPU slot: no other CPU writes it, no atomics needed. */
		c->packets++;
		c->bytes += skb->len;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
