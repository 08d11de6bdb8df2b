// SPDX-License-Identifier: GPL-2.0
/*
 * Socket-level service load balancing (the seed of kube-proxy replacement, as Cilium's bpf_sock.c):
 * connect()/sendmsg() to a service VIP:port is rewritten in the socket layer to a backend IP:port,
 * so no packet ever carries the VIP and no per-packet NAT is needed. For unconnected UDP, recvmsg()
 * rewrites the backend source back to the VIP so the application sees the address it talked to.
 *
 * lb4_services: {vip, port, proto} -> {backend ip, backend port}   (network byte order)
 * lb4_reverse:  {backend ip, backend port, proto} -> {vip, port}   (for recvmsg4)
 * Layouts are mirrored by src/Loom.Linux/Bpf/SockLb.cs.
 */
#include "loom_common.h"

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

struct lb4_key {
	__u32 address; /* network byte order */
	__u16 port;    /* network byte order */
	__u8 proto;    /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 pad;
};

struct lb4_backend {
	__u32 address; /* network byte order */
	__u16 port;    /* network byte order */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lb4_key);
	__type(value, struct lb4_backend);
} lb4_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lb4_key);
	__type(value, struct lb4_backend);
} lb4_reverse SEC(".maps");

/* Index 0: translations done (connect + sendmsg), 1: reverse translations (recvmsg). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lb4_stats SEC(".maps");

static __always_inline void bump(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&lb4_stats, &idx);

	if (v)
		(*v)++;
}


static __always_inline void translate(struct bpf_sock_addr *ctx, __u8 proto)
{
	struct lb4_key key = {
		.address = ctx->user_ip4,
		.port = (__u16)ctx->user_port,
		.proto = proto,
	};
	struct lb4_backend *be = bpf_map_lookup_elem(&lb4_services, &key);

	if (!be)
		return;
	ctx->user_ip4 = be->address;
	ctx->user_port = (__u32)be->port;
	bump(0);
}

SEC("cgroup/connect4")
int sock4_connect(struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;

	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
		translate(ctx, (__u8)proto);
	return 1; /* allow */
}

SEC("cgroup/sendmsg4")
int sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	translate(ctx, IPPROTO_UDP);
	return 1;
}

SEC("cgroup/recvmsg4")
int sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	struct lb4_key key = {
		.address = ctx->user_ip4,
		.port = (__u16)ctx->user_port,
		.proto = IPPROTO_UDP,
	};
	struct lb4_backend *svc = bpf_map_lookup_elem(&lb4_reverse, &key);

	if (svc) {
		ctx->user_ip4 = svc->address;
		ctx->user_port = (__u32)svc->port;
		bump(1);
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
