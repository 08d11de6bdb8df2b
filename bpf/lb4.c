// SPDX-License-Identifier: GPL-2.0
/*
 * Loom's eBPF service load balancer (kube-proxy replacement), IPv4. The map layouts follow the facts of
 * Cilium's lb4 maps (bpf/lib/lb.h, pkg/maps/lbmap); the code is Loom's own.
 *
 *   lb4_svc      {vip, dport, slot, proto}  -> slot 0: master {affinity timeout, count, rev_nat, flags, maglev M}
 *                                              slot n: {backend id, rev_nat}
 *   lb4_backends backend id                 -> {ip, port, proto}
 *   lb4_revnat   rev_nat index              -> {vip, port}
 *   lb4_ct       LRU {saddr, daddr, sport, dport, proto, dir} -> {backend id, rev_nat, flags, last seen}
 *                (lifetimes after the last packet as Cilium's: TCP SYN only 60 s, established 6 h, FIN/RST seen 10 s,
 *                UDP 60 s; lb4_config can change them; the agent's GC deletes expired entries (LbConntrackGc))
 *                dir 0 (SVC): client -> VIP tuple, remembers the backend for the rest of the flow
 *                dir 1 (REV): client <- backend tuple (stored as the forward tuple after DNAT), for reverse NAT
 *   lb4_affinity LRU {client (IPv4 or netns cookie), rev_nat, is_cookie} -> {backend id, last used (s)}
 *   lb4_sk_rev   LRU {socket cookie, backend ip, port} -> {vip, port, rev_nat}  (unconnected UDP recvmsg)
 *   lb4_ifaces   ifindex -> 1: where the pod tc programs are attached, 2: the underlay device's node-port programs
 *                (bookkeeping for restarts and flush)
 *   lb4_snat     LRU {saddr, daddr, sport, dport, proto, dir} -> {address, port, rev_nat, last seen}: node-port SNAT
 *                dir 2 (OUT): client -> remote backend tuple -> the node address and NAT port it goes out with
 *                dir 3 (IN):  backend -> node:NAT port tuple (the reply) -> the client's address and port
 *   lb4_config   [0] {node address, ct lifetimes, since}: the source of SNATed node-port traffic; lb4_ct's lifetimes
 *   lb4_maglev   {rev_nat, chunk} -> 256 backend ids: slots [256 chunk, 256 chunk + 255] of a Maglev service's
 *                lookup table of M slots (M prime, from the master entry)
 *
 * Programs:
 *   lb4_from_pod (tc, ingress of a pod's host-side veth = traffic from the pod): per-packet DNAT of
 *       ClusterIP traffic to a backend chosen on the first packet (at random, or for a Maglev service the
 *       owner of slot jhash(saddr, daddr, ports, proto) % M of its lookup table) and remembered in lb4_ct.
 *       A service without backends: a TCP SYN is answered with a RST (the client sees ECONNREFUSED at
 *       once), anything else is dropped.
 *       Hairpin (the client is its own backend): the source becomes 169.254.42.1 and the packet goes back out of
 *       the same veth; the pod's reply to 169.254.42.1 is translated back here too (as Cilium's service loopback).
 *   lb4_to_pod (tc, egress of a pod's host-side veth = traffic to the pod): reverse NAT of replies.
 *   Both return TC_ACT_UNSPEC for a packet they leave alone, and lb4_from_pod for one it translated, so the later tc
 *   filters on the hook (network policy, host routing) run; lb4_to_pod's reverse-NATed replies end the chain (TC_ACT_OK).
 *   lb4_from_net (tc, ingress of the node's underlay device): a packet to a node-port or external-IP frontend
 *       (LB_SVC_FLAG_EXTERNAL) is DNAT-ed as lb4_from_pod does. A local backend gets it through the kernel with the
 *       client's address (its reply is reverse-translated by lb4_to_net). A remote backend (Cluster policy) gets it
 *       source-NATed to the node address and a port of lb4_snat (61000-65535, above Linux's ephemeral range, as
 *       masquerade's) and sent out by FIB lookup; its reply, arriving here, is translated back (nodeIP:nodePort ->
 *       client) and sent back out. A frontend without (local) backends: dropped.
 *   lb4_to_net (tc, egress of the underlay device): reverse NAT of local backends' replies to outside clients.
 *   lb4_connect4 / lb4_sendmsg4 / lb4_recvmsg4 (cgroup sock_addr): socket-level LB with the same maps;
 *       a service without backends makes connect()/sendmsg() fail with EPERM.
 *
 * Flow events (flow_events.h): a translation (frontend in orig_*) where a backend is chosen for a new flow, at
 * from-endpoint for lb4_from_pod and at the socket for connect4 / sendmsg4 (where the client's address and port are not
 * known yet: 0); a drop "no service backend" where a service has none.
 *
 * All addresses and ports are in network byte order. Mirrored by src/Loom.Linux/Bpf/Lb4Maps.cs.
 */
#include "loom_common.h"
#include "flow_events.h"

#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

#define LB_SVC_FLAG_AFFINITY 0x01
#define LB_SVC_FLAG_MAGLEV 0x02
#define LB_SVC_FLAG_EXTERNAL 0x04 /* a node-port or external-IP frontend: served on the underlay too */
#define LB_SVC_FLAG_EXT_LOCAL 0x08 /* externalTrafficPolicy Local: local backends only, the client's address kept */

#define LB_BE_F_LOCAL 0x01 /* lb4_backend.flags: the backend is a pod on this node */

#define LB_MAGLEV_CHUNK 256 /* table slots per lb4_maglev entry (a power of two: the index is masked) */

#define LB_CT_SVC 0
#define LB_CT_REV 1
#define LB_SNAT_OUT 2
#define LB_SNAT_IN 3

#define LB_SNAT_PORT_MIN 61000
#define LB_SNAT_PORT_MAX 65535
#define LB_SNAT_TRIES 16

#define LB_IFACE_UNDERLAY 2

#define LB_CT_F_CLOSING 0x01     /* lb4_ct_entry.flags: a FIN or RST of the flow was seen (either side) */
#define LB_CT_F_ESTABLISHED 0x02 /* a TCP packet without SYN was seen: the connection's lifetime applies, not the SYN's */

/* Lifetimes of lb4_ct entries when lb4_config says 0, as Cilium's CT (bpf/lib/conntrack.h, pkg/maps/ctmap). */
#define LB_CT_TCP_SYN_S 60       /* a TCP flow that has seen only SYNs */
#define LB_CT_TCP_S 21600        /* an established TCP flow */
#define LB_CT_TCP_CLOSE_S 10     /* a TCP flow that has seen a FIN or RST */
#define LB_CT_OTHER_S 60         /* UDP */

#define LB_MAX_SLOTS 256 /* backends per service the data path will pick from */

struct lb4_key {
	__be32 address;
	__be16 dport;
	__u16 backend_slot; /* 0 = master entry */
	__u8 proto;
	__u8 scope;
	__u8 pad[2];
};

struct lb4_service {
	__u32 backend_id; /* slot > 0: backend id; master: affinity timeout (seconds) */
	__u16 count;      /* master: number of backend slots */
	__u16 rev_nat_index;
	__u8 flags;
	__u8 pad;
	__u16 maglev_size; /* master of a Maglev service: M, the lookup table's size (prime) */
};

struct lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 flags;
};

struct lb4_reverse_nat {
	__be32 address;
	__be16 port;
	__u16 pad;
};

struct lb4_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;
	__u16 pad;
};

struct lb4_ct_entry {
	__u32 backend_id;
	__u16 rev_nat_index;
	__u16 flags; /* LB_CT_F_* */
	__u64 last_seen_ns;
};

struct lb4_affinity_key {
	__u64 client; /* IPv4 source address (tc) or netns cookie (socket LB) */
	__u16 rev_nat_index;
	__u8 is_cookie;
	__u8 pad[5];
};

struct lb4_affinity_val {
	__u32 backend_id;
	__u32 last_used_s;
};

struct lb4_sk_rev_key {
	__u64 cookie;
	__be32 address;
	__be16 port;
	__u16 pad;
};

struct lb4_sk_rev_val {
	__be32 address;
	__be16 port;
	__u16 rev_nat_index;
};

struct lb4_maglev_key {
	__u16 rev_nat_index;
	__u16 pad;
	__u32 chunk; /* slot / LB_MAGLEV_CHUNK */
};

struct lb4_maglev_chunk {
	__u32 backend_ids[LB_MAGLEV_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
} lb4_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct lb4_backend);
} lb4_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u16);
	__type(value, struct lb4_reverse_nat);
} lb4_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct lb4_ct_key);
	__type(value, struct lb4_ct_entry);
} lb4_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lb4_affinity_key);
	__type(value, struct lb4_affinity_val);
} lb4_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lb4_sk_rev_key);
	__type(value, struct lb4_sk_rev_val);
} lb4_sk_rev SEC(".maps");

/* Interfaces (host-side veth ifindexes in the node namespace) the agent attached the tc programs to, so a
 * restarted agent or a flush can find them again. Not used by the programs. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} lb4_ifaces SEC(".maps");

struct lb4_snat_entry {
	__be32 address;
	__be16 port;
	__u16 rev_nat_index;
	__u64 last_seen_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct lb4_ct_key);
	__type(value, struct lb4_snat_entry);
} lb4_snat SEC(".maps");

/* ct_*_s: lb4_ct lifetimes in seconds (0: the LB_CT_* default), written by the agent, applied by its GC and here. */
struct lb4_cfg {
	__be32 node_address;
	__u32 pad;
	__u32 ct_tcp_syn_s;
	__u32 ct_tcp_s;
	__u32 ct_tcp_close_s;
	__u32 ct_other_s;
	__u64 since_ns; /* when the agent first wrote this map (CLOCK_MONOTONIC): since then these programs serve the node */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb4_cfg);
} lb4_config SEC(".maps");

/*
 * Maglev lookup tables, one per Maglev service (by rev-NAT index), in chunks of 256 slots: a 16381-slot table is 64
 * entries of 1 KiB. Not preallocated, so the cap costs nothing until used (65536 chunks = 1024 services at M = 16381).
 * Each chunk update is atomic; a table being rewritten mixes old and new chunks, all naming live backends.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lb4_maglev_key);
	__type(value, struct lb4_maglev_chunk);
} lb4_maglev SEC(".maps");

/*
 * 0 DNAT (tc), 1 reverse NAT (tc), 2 socket translations, 3 socket reverse, 4 no backend (refused/dropped),
 * 5 new flows (backend selections), 6 affinity hits, 7 mid-stream TCP of flows it did not open (left to the kernel).
 */
#define LB_STAT_DNAT 0
#define LB_STAT_REVNAT 1
#define LB_STAT_SOCK 2
#define LB_STAT_SOCK_REV 3
#define LB_STAT_NO_BACKEND 4
#define LB_STAT_SELECT 5
#define LB_STAT_AFFINITY 6
#define LB_STAT_PASS_KERNEL 7
#define LB_STAT_MAX 8

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lb4_stats SEC(".maps");

static __always_inline void bump(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&lb4_stats, &idx);

	if (v)
		(*v)++;
}

static __always_inline __u32 now_s(void)
{
	return (__u32)(bpf_ktime_get_ns() / 1000000000ULL);
}

/* How long an lb4_ct entry of proto with flags lives without a packet (ns), as the agent's GC applies it. */
static __always_inline __u64 ct_lifetime_ns(__u8 proto, __u16 flags)
{
	__u32 zero = 0, s = 0, dflt;
	struct lb4_cfg *cfg = bpf_map_lookup_elem(&lb4_config, &zero);

	if (proto != IPPROTO_TCP) {
		dflt = LB_CT_OTHER_S;
		if (cfg)
			s = cfg->ct_other_s;
	} else if (flags & LB_CT_F_CLOSING) {
		dflt = LB_CT_TCP_CLOSE_S;
		if (cfg)
			s = cfg->ct_tcp_close_s;
	} else if (flags & LB_CT_F_ESTABLISHED) {
		dflt = LB_CT_TCP_S;
		if (cfg)
			s = cfg->ct_tcp_s;
	} else {
		dflt = LB_CT_TCP_SYN_S;
		if (cfg)
			s = cfg->ct_tcp_syn_s;
	}
	return (__u64)(s ? s : dflt) * 1000000000ULL;
}

/*
 * Whether these programs have served the node's Services for longer than an established flow lives. Until then a
 * mid-stream flow without an entry may be one the kernel's DNAT opened (kube-proxy, before the switch to eBPF): it
 * belongs to the kernel's conntrack, and a Maglev re-choice would send most of them to a pod that resets them.
 */
static __always_inline int lb_owns_midstream(__u64 now)
{
	__u32 zero = 0;
	struct lb4_cfg *cfg = bpf_map_lookup_elem(&lb4_config, &zero);

	if (!cfg || !cfg->since_ns || now < cfg->since_ns)
		return 0;
	return now - cfg->since_ns > ct_lifetime_ns(IPPROTO_TCP, LB_CT_F_ESTABLISHED);
}

static __always_inline int ct_stale(__u64 last_seen_ns, __u64 now, __u64 lifetime)
{
	return now > last_seen_ns && now - last_seen_ns > lifetime;
}

/* The kernel's jhash_3words (Bob Jenkins' lookup3 final mix); mirrored by Maglev.JHash3Words in C#. */
static __always_inline __u32 rol32(__u32 w, __u32 s)
{
	return (w << s) | (w >> (32 - s));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += 0xdeadbeef + 12 + initval;
	b += 0xdeadbeef + 12 + initval;
	c += 0xdeadbeef + 12 + initval;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

/* The owner of slot hash % M of a Maglev service's table, if it is a live backend; 0 otherwise. */
static __always_inline __u32 maglev_select(const struct lb4_service *svc, __u32 hash)
{
	struct lb4_maglev_key key = { .rev_nat_index = svc->rev_nat_index };
	struct lb4_maglev_chunk *chunk;
	__u32 size = svc->maglev_size;
	__u32 slot, id;

	if (size == 0)
		return 0;
	slot = hash % size;
	key.chunk = slot / LB_MAGLEV_CHUNK;
	chunk = bpf_map_lookup_elem(&lb4_maglev, &key);
	if (!chunk)
		return 0;
	id = chunk->backend_ids[slot & (LB_MAGLEV_CHUNK - 1)];
	if (!id || !bpf_map_lookup_elem(&lb4_backends, &id))
		return 0;
	return id;
}

static __always_inline struct lb4_service *lookup_master(__be32 addr, __be16 port, __u8 proto)
{
	struct lb4_key key = {
		.address = addr,
		.dport = port,
		.backend_slot = 0,
		.proto = proto,
	};

	return bpf_map_lookup_elem(&lb4_svc, &key);
}

/*
 * The backend id to use for a new flow: the affinity entry if valid, else for a Maglev service the owner of slot
 * flow_hash % M of its table, else (or if that table is missing) a random slot. 0 = none.
 */
static __always_inline __u32 select_backend(__be32 addr, __be16 port, __u8 proto, const struct lb4_service *svc,
					    __u64 client, __u8 is_cookie, __u32 flow_hash)
{
	struct lb4_affinity_key akey = {
		.client = client,
		.rev_nat_index = svc->rev_nat_index,
		.is_cookie = is_cookie,
	};
	struct lb4_affinity_val *aval;
	struct lb4_key key = {
		.address = addr,
		.dport = port,
		.proto = proto,
	};
	struct lb4_service *slot;
	__u32 count = svc->count;
	__u32 id;

	if (count == 0)
		return 0;
	if (svc->flags & LB_SVC_FLAG_AFFINITY) {
		aval = bpf_map_lookup_elem(&lb4_affinity, &akey);
		if (aval && now_s() - aval->last_used_s <= svc->backend_id &&
		    bpf_map_lookup_elem(&lb4_backends, &aval->backend_id)) {
			aval->last_used_s = now_s();
			bump(LB_STAT_AFFINITY);
			return aval->backend_id;
		}
	}
	id = 0;
	if (svc->flags & LB_SVC_FLAG_MAGLEV)
		id = maglev_select(svc, flow_hash);
	if (!id) {
		if (count > LB_MAX_SLOTS)
			count = LB_MAX_SLOTS;
		key.backend_slot = (__u16)(bpf_get_prandom_u32() % count) + 1;
		slot = bpf_map_lookup_elem(&lb4_svc, &key);
		if (!slot)
			return 0;
		id = slot->backend_id;
	}
	bump(LB_STAT_SELECT);
	if (svc->flags & LB_SVC_FLAG_AFFINITY) {
		struct lb4_affinity_val nval = { .backend_id = id, .last_used_s = now_s() };

		bpf_map_update_elem(&lb4_affinity, &akey, &nval, BPF_ANY);
	}
	return id;
}

/* ---------------------------------------------------------------- tc: per-packet NAT on host-side veths */

struct pkt {
	__u32 l3_off;
	__u32 l4_off;
	__u8 proto;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 tcp_flags;
	__u32 csum_off;   /* offset of the L4 checksum */
	__u64 csum_flags; /* extra bpf_l4_csum_replace flags (UDP: BPF_F_MARK_MANGLED_0) */
};

/* Parses Ethernet + IPv4 + TCP/UDP ports. 0 on success. Fragments after the first are not handled (-1). */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return -1;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return -1;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return -1;
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return -1;
	p->l3_off = ETH_HLEN;
	p->l4_off = ETH_HLEN + ihl;
	p->proto = ip->protocol;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)ip + ihl;

		if ((void *)(tcp + 1) > data_end)
			return -1;
		p->sport = tcp->source;
		p->dport = tcp->dest;
		p->tcp_flags = ((__u8 *)tcp)[13];
		p->csum_off = p->l4_off + offsetof(struct tcphdr, check);
		p->csum_flags = 0;
	} else {
		struct udphdr *udp = (void *)ip + ihl;

		if ((void *)(udp + 1) > data_end)
			return -1;
		p->sport = udp->source;
		p->dport = udp->dest;
		p->tcp_flags = 0;
		p->csum_off = p->l4_off + offsetof(struct udphdr, check);
		/* A UDP checksum of 0 means "none": keep it 0 rather than "fixing" it. */
		p->csum_flags = BPF_F_MARK_MANGLED_0;
	}
	return 0;
}

/* Rewrites the IPv4 address at l3 offset addr_off (saddr 12, daddr 16) and the L4 port at port_off (0 src, 2 dst). */
static __always_inline int rewrite(struct __sk_buff *skb, const struct pkt *p, __u32 addr_off, __be32 old_addr,
				   __be32 new_addr, __u32 port_off, __be16 old_port, __be16 new_port)
{
	__u32 csum = p->csum_off;

	if (old_addr != new_addr) {
		if (bpf_l4_csum_replace(skb, csum, old_addr, new_addr, BPF_F_PSEUDO_HDR | p->csum_flags | sizeof(new_addr)))
			return -1;
		if (bpf_l3_csum_replace(skb, p->l3_off + offsetof(struct iphdr, check), old_addr, new_addr, sizeof(new_addr)))
			return -1;
		if (bpf_skb_store_bytes(skb, p->l3_off + addr_off, &new_addr, sizeof(new_addr), 0))
			return -1;
	}
	if (old_port != new_port) {
		if (bpf_l4_csum_replace(skb, csum, old_port, new_port, p->csum_flags | sizeof(new_port)))
			return -1;
		if (bpf_skb_store_bytes(skb, p->l4_off + port_off, &new_port, sizeof(new_port), 0))
			return -1;
	}
	return 0;
}

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/*
 * Turns a SYN to a service without backends into the RST+ACK its sender expects from a closed port, and sends
 * it back out of the interface it came in on (the host-side veth, towards the pod). Swapping addresses and
 * ports leaves every checksum as it is; seq, ack_seq and the flags are patched with bpf_l4_csum_replace.
 */
static __always_inline int reject_syn(struct __sk_buff *skb, const struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *tcp;
	__u8 mac[ETH_ALEN];
	__u32 csum = p->csum_off;
	__be32 seq, ack, zero = 0;
	__be16 old_flags, new_flags;
	__u16 tot_len;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_SHOT;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_SHOT;
	tot_len = bpf_ntohs(ip->tot_len);
	tcp = (void *)ip + (ip->ihl * 4);
	if ((void *)(tcp + 1) > data_end)
		return TC_ACT_SHOT;
	/* A SYN carrying data (TFO) would need trimming: drop it instead. */
	if (tot_len != ip->ihl * 4 + tcp->doff * 4)
		return TC_ACT_SHOT;

	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	ip->saddr = p->daddr;
	ip->daddr = p->saddr;
	tcp->source = p->dport;
	tcp->dest = p->sport;
	seq = tcp->seq;
	ack = bpf_htonl(bpf_ntohl(seq) + 1);
	old_flags = ((__be16 *)tcp)[6];
	new_flags = (old_flags & bpf_htons(0xF000)) | bpf_htons(TCP_RST | TCP_ACK);
	/* Pointers are invalid after the helpers below: no packet access past this point. */
	if (bpf_l4_csum_replace(skb, csum, seq, zero, sizeof(zero)))
		return TC_ACT_SHOT;
	if (bpf_l4_csum_replace(skb, csum, 0, ack, sizeof(ack)))
		return TC_ACT_SHOT;
	if (bpf_l4_csum_replace(skb, csum, old_flags, new_flags, sizeof(new_flags)))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, p->l4_off + offsetof(struct tcphdr, seq), &zero, sizeof(zero), 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, p->l4_off + offsetof(struct tcphdr, ack_seq), &ack, sizeof(ack), 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, p->l4_off + 12, &new_flags, sizeof(new_flags), 0))
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* The packet's flow as the backend sees it (daddr:dport, the backend's), for a translation or drop event. */
static __always_inline void ev_flow(struct loom_ev_flow *f, const struct pkt *p, __be32 daddr, __be16 dport)
{
	f->saddr = p->saddr;
	f->daddr = daddr;
	f->sport = p->sport;
	f->dport = dport;
	f->proto = p->proto;
	f->tcp_flags = p->tcp_flags;
	f->ep_id = 0;
	f->src_identity = 0;
	f->dst_identity = 0;
}

/* A drop of the packet as it arrived (not translated). */
static __always_inline void ev_lb_drop(struct __sk_buff *skb, __u8 obs, __u8 reason, const struct pkt *p)
{
	struct loom_ev_flow f;

	ev_flow(&f, p, p->daddr, p->dport);
	loom_ev_drop(skb, obs, reason, 0, &f);
}

static __always_inline void ev_no_backend(struct __sk_buff *skb, __u8 obs, const struct pkt *p)
{
	ev_lb_drop(skb, obs, LOOM_DROP_NO_SERVICE_BACKEND, p);
}

#define LB_CONTINUE 0x7fff /* lb_flow: translate the packet to *bep */

/*
 * Whether a flow's forward entry ct (key: its client -> frontend tuple) is past its lifetime by its own last packet and
 * by its reverse entry's (replies refresh only that one), as the agent's GC judges it.
 */
static __always_inline int ct_expired(const struct lb4_ct_entry *ct, const struct lb4_ct_key *key, __u64 now)
{
	struct lb4_ct_key rk = *key;
	struct lb4_ct_entry *rev;
	struct lb4_backend *be;
	__u32 id = ct->backend_id;

	if (!ct_stale(ct->last_seen_ns, now, ct_lifetime_ns(key->proto, ct->flags)))
		return 0;
	be = bpf_map_lookup_elem(&lb4_backends, &id);
	if (!be)
		return 1;
	rk.daddr = be->address;
	rk.dport = be->port;
	rk.dir = LB_CT_REV;
	rev = bpf_map_lookup_elem(&lb4_ct, &rk);
	return !rev || rev->backend_id != id ||
	       ct_stale(rev->last_seen_ns, now, ct_lifetime_ns(key->proto, ct->flags | rev->flags));
}

/*
 * The backend of the packet's flow to frontend svc: its lb4_ct entry's, or for a new flow (or one whose backend is gone)
 * a fresh choice, remembered with its reverse entry. Returns LB_CONTINUE with *bep set, or the packet's verdict (a
 * refusal with a RST where reject says so, a drop, or UNSPEC for a mid-stream flow the kernel's conntrack owns).
 * A mid-stream TCP packet without an entry (evicted, collected, or a flow kube-proxy opened): a Maglev service chooses
 * again, as Cilium does, and gets the flow's first choice back while its backend set is unchanged, once the programs
 * have been in charge longer than an established flow lives; before that, and always for a random service, it is left
 * to the kernel, as a new choice would reset a kube-proxy flow (N-1 times in N) rather than keep it.
 */
static __always_inline int lb_flow(struct __sk_buff *skb, struct pkt *p, struct lb4_service *svc, __u8 obs, int reject,
				   struct lb4_backend **bep)
{
	struct loom_ev_flow f;
	struct lb4_ct_key ct_key = {};
	struct lb4_ct_entry *ct, entry = {};
	struct lb4_backend *be = NULL;
	__u32 id = 0;
	__u64 now = bpf_ktime_get_ns();
	int syn, closing, midstream;

	syn = p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
	closing = p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FIN | TCP_RST));
	midstream = p->proto == IPPROTO_TCP && !(p->tcp_flags & TCP_SYN);
	ct_key.saddr = p->saddr;
	ct_key.daddr = p->daddr;
	ct_key.sport = p->sport;
	ct_key.dport = p->dport;
	ct_key.proto = p->proto;
	ct_key.dir = LB_CT_SVC;
	ct = bpf_map_lookup_elem(&lb4_ct, &ct_key);
	/*
	 * As Cilium's CT: a SYN on the tuple of a flow that has seen a FIN or RST is a new connection reusing the client
	 * port (the kernel sends no fresh SYN on a tuple while its connection lives), so it gets a new entry and a fresh
	 * backend choice. Entries are not deleted at the FIN or RST: the rest of the close (final ACKs, the other side's
	 * FIN, data after a half-close) still needs its translation. A SYN on an entry that is not closing is a
	 * retransmission and keeps its backend.
	 */
	if (ct && syn && (ct->flags & LB_CT_F_CLOSING))
		ct = NULL;
	/*
	 * Past its lifetime but not collected yet: a new flow's packet (a SYN, any UDP datagram) starts afresh, as it would
	 * after the GC. A mid-stream TCP packet keeps the entry: its flow is alive after all.
	 */
	if (ct && !midstream && ct_expired(ct, &ct_key, now))
		ct = NULL;
	if (ct) {
		id = ct->backend_id;
		be = bpf_map_lookup_elem(&lb4_backends, &id);
		if (be) {
			ct->last_seen_ns = now;
			if (midstream)
				ct->flags |= LB_CT_F_ESTABLISHED;
		}
	}
	if (!be) {
		/* A new flow, or one whose backend was removed: choose (again). */
		if (midstream) {
			/* Mid-stream packet of a flow whose backend is gone: no one can take it over. */
			if (ct) {
				bpf_map_delete_elem(&lb4_ct, &ct_key);
				ev_no_backend(skb, obs, p);
				return TC_ACT_SHOT;
			}
			/* No entry: the kernel's conntrack may hold its translation (kube-proxy's DNAT, before the switch to
			 * eBPF) until it ends, and another backend would reset it. Maglev chooses again only once no such flow
			 * can be left (see lb_owns_midstream); a random choice never. */
			if (!(svc->flags & LB_SVC_FLAG_MAGLEV) || !lb_owns_midstream(now)) {
				bump(LB_STAT_PASS_KERNEL);
				return TC_ACT_UNSPEC;
			}
		}
		id = select_backend(p->daddr, p->dport, p->proto, svc, p->saddr, 0,
				    jhash_3words(p->saddr, p->daddr, (__u32)p->sport | ((__u32)p->dport << 16), p->proto));
		if (id)
			be = bpf_map_lookup_elem(&lb4_backends, &id);
		if (!be) {
			bump(LB_STAT_NO_BACKEND);
			ev_no_backend(skb, obs, p); /* refused with a RST or dropped: the packet does not reach a backend */
			if (reject && syn)
				return reject_syn(skb, p);
			return TC_ACT_SHOT;
		}
		entry.backend_id = id;
		entry.rev_nat_index = svc->rev_nat_index;
		entry.flags = (closing ? LB_CT_F_CLOSING : 0) | (midstream ? LB_CT_F_ESTABLISHED : 0);
		entry.last_seen_ns = now;
		bpf_map_update_elem(&lb4_ct, &ct_key, &entry, BPF_ANY);
		ev_flow(&f, p, be->address, be->port);
		loom_ev_translation(obs, skb->ifindex, skb->len, &f, p->daddr, p->dport);
	} else {
		if (closing)
			ct->flags |= LB_CT_F_CLOSING;
		entry = *ct;
	}
	/*
	 * The reply direction, keyed by the tuple as it looks after DNAT. Written again on every SYN: a direct connection
	 * on this tuple in between (which deletes it) or LRU eviction may have removed it while the forward entry
	 * stayed, and the SYN-ACK would then reach the client from the pod's address. A re-chosen mid-stream flow's too.
	 */
	if (!ct || syn) {
		ct_key.daddr = be->address;
		ct_key.dport = be->port;
		ct_key.dir = LB_CT_REV;
		bpf_map_update_elem(&lb4_ct, &ct_key, &entry, BPF_ANY);
	}
	*bep = be;
	return LB_CONTINUE;
}

/*
 * The backend answers the flow client -> frontend: a FIN or RST marks its forward entry closing (its next SYN consults
 * it). With refresh (a node-port reply SNATed back from a remote backend, which no reverse lb4_ct entry sees) the reply
 * also counts as the flow's last packet: a UDP stream whose client is quiet lives while the backend sends.
 */
static __always_inline void reply_seen(const struct pkt *p, __be32 client, __be16 cport, const struct lb4_reverse_nat *rn,
				       int refresh)
{
	struct lb4_ct_key key = {
		.saddr = client,
		.daddr = rn->address,
		.sport = cport,
		.dport = rn->port,
		.proto = p->proto,
		.dir = LB_CT_SVC,
	};
	struct lb4_ct_entry *fwd;
	int closing = p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FIN | TCP_RST));

	if (!closing && !refresh)
		return;
	fwd = bpf_map_lookup_elem(&lb4_ct, &key);
	if (!fwd)
		return;
	if (closing)
		fwd->flags |= LB_CT_F_CLOSING;
	if (refresh)
		fwd->last_seen_ns = bpf_ktime_get_ns();
}

/*
 * Hairpin (a pod reaching its own service and chosen as the backend), as Cilium's IPv4 service loopback: the pod would
 * drop a packet from its own address, so its source becomes LB_LOOPBACK, and the packet goes straight back to the pod
 * (same veth, MACs swapped). The reply to LB_LOOPBACK is translated back by hairpin_reply, on the same veth.
 */
#define LB_LOOPBACK LOOM_SVC_LOOPBACK /* 169.254.42.1, loom_common.h */

/* Sends the packet back out of the interface it came in on, towards the pod that sent it (MACs swapped). */
static __always_inline int bounce(struct __sk_buff *skb)
{
	__u8 src[ETH_ALEN], dst[ETH_ALEN];

	if (bpf_skb_load_bytes(skb, 0, dst, ETH_ALEN) || bpf_skb_load_bytes(skb, ETH_ALEN, src, ETH_ALEN))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 0, src, ETH_ALEN, 0) || bpf_skb_store_bytes(skb, ETH_ALEN, dst, ETH_ALEN, 0))
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* The pod's reply to a hairpinned flow (pod:backend port -> LB_LOOPBACK:client port): from the frontend, to itself. */
static __always_inline int hairpin_reply(struct __sk_buff *skb, struct pkt *p)
{
	struct lb4_ct_key ct_key = {
		.saddr = p->saddr,
		.daddr = p->saddr,
		.sport = p->dport,
		.dport = p->sport,
		.proto = p->proto,
		.dir = LB_CT_REV,
	};
	struct lb4_ct_entry *ct = bpf_map_lookup_elem(&lb4_ct, &ct_key);
	struct lb4_reverse_nat *rn;
	__u16 idx;

	if (!ct)
		return TC_ACT_UNSPEC;
	idx = ct->rev_nat_index;
	rn = bpf_map_lookup_elem(&lb4_revnat, &idx);
	if (!rn)
		return TC_ACT_UNSPEC;
	ct->last_seen_ns = bpf_ktime_get_ns();
	if (p->proto == IPPROTO_TCP && !(p->tcp_flags & TCP_SYN))
		ct->flags |= LB_CT_F_ESTABLISHED;
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FIN | TCP_RST))) {
		ct->flags |= LB_CT_F_CLOSING;
		reply_seen(p, p->saddr, p->dport, rn, 0);
	}
	if (rewrite(skb, p, offsetof(struct iphdr, saddr), p->saddr, rn->address, 0, p->sport, rn->port) ||
	    rewrite(skb, p, offsetof(struct iphdr, daddr), p->daddr, p->saddr, 2, p->dport, p->dport)) {
		ev_lb_drop(skb, LOOM_OBS_FROM_ENDPOINT, LOOM_DROP_INVALID_PACKET, p);
		return TC_ACT_SHOT;
	}
	bump(LB_STAT_REVNAT);
	return bounce(skb);
}

/*
 * A new direct connection (to no frontend) may reuse the tuple of an earlier, service-translated one (same client port,
 * same backend): its reverse entry must not rewrite this flow's replies into the frontend. Called for such packets.
 */
static __always_inline void forget_reverse(const struct pkt *p)
{
	struct lb4_ct_key ct_key = {};

	if (p->proto != IPPROTO_TCP || (p->tcp_flags & (TCP_SYN | TCP_ACK)) != TCP_SYN)
		return;
	ct_key.saddr = p->saddr;
	ct_key.daddr = p->daddr;
	ct_key.sport = p->sport;
	ct_key.dport = p->dport;
	ct_key.proto = p->proto;
	ct_key.dir = LB_CT_REV;
	bpf_map_delete_elem(&lb4_ct, &ct_key);
}

SEC("tc")
int lb4_from_pod(struct __sk_buff *skb)
{
	struct lb4_service *svc;
	struct lb4_backend *be = NULL;
	struct pkt p = {};
	int rc;

	/* Nothing for the LB: UNSPEC hands the packet to the next tc filter on this hook (host routing). */
	if (parse(skb, &p))
		return TC_ACT_UNSPEC;
	if (p.daddr == LB_LOOPBACK)
		return hairpin_reply(skb, &p);
	svc = lookup_master(p.daddr, p.dport, p.proto);
	if (!svc) {
		forget_reverse(&p);
		return TC_ACT_UNSPEC;
	}
	rc = lb_flow(skb, &p, svc, LOOM_OBS_FROM_ENDPOINT, 1, &be);
	if (rc != LB_CONTINUE || !be)
		return rc;
	if (rewrite(skb, &p, offsetof(struct iphdr, daddr), p.daddr, be->address, 2, p.dport, be->port))
		goto invalid;
	bump(LB_STAT_DNAT);
	if (be->address == p.saddr) {
		if (rewrite(skb, &p, offsetof(struct iphdr, saddr), p.saddr, LB_LOOPBACK, 0, p.sport, p.sport))
			goto invalid;
		return bounce(skb);
	}
	/* The translated packet goes on to the later filters: network policy judges it by its backend, host routing forwards it. */
	return TC_ACT_UNSPEC;
invalid:
	/* a translation may have been reported above: say the packet went no further */
	ev_lb_drop(skb, LOOM_OBS_FROM_ENDPOINT, LOOM_DROP_INVALID_PACKET, &p);
	return TC_ACT_SHOT;
}

/* Reverse NAT of a backend's reply (backend -> client) by the flow's REV entry; UNSPEC for a packet not one. */
static __always_inline int rev_nat(struct __sk_buff *skb, __u8 obs)
{
	struct lb4_ct_key ct_key = {};
	struct lb4_ct_entry *ct;
	struct lb4_reverse_nat *rn;
	struct pkt p = {};
	__u16 idx;

	if (parse(skb, &p))
		return TC_ACT_UNSPEC;
	/* A reply: backend -> client. The REV entry holds the client -> backend tuple. */
	ct_key.saddr = p.daddr;
	ct_key.daddr = p.saddr;
	ct_key.sport = p.dport;
	ct_key.dport = p.sport;
	ct_key.proto = p.proto;
	ct_key.dir = LB_CT_REV;
	ct = bpf_map_lookup_elem(&lb4_ct, &ct_key);
	if (!ct)
		return TC_ACT_UNSPEC;
	ct->last_seen_ns = bpf_ktime_get_ns();
	idx = ct->rev_nat_index;
	rn = bpf_map_lookup_elem(&lb4_revnat, &idx);
	if (!rn)
		return TC_ACT_UNSPEC;
	if (p.proto == IPPROTO_TCP && !(p.tcp_flags & TCP_SYN))
		ct->flags |= LB_CT_F_ESTABLISHED;
	if (p.proto == IPPROTO_TCP && (p.tcp_flags & (TCP_FIN | TCP_RST))) {
		ct->flags |= LB_CT_F_CLOSING;
		reply_seen(&p, p.daddr, p.dport, rn, 0);
	}
	if (rewrite(skb, &p, offsetof(struct iphdr, saddr), p.saddr, rn->address, 0, p.sport, rn->port)) {
		ev_lb_drop(skb, obs, LOOM_DROP_INVALID_PACKET, &p);
		return TC_ACT_SHOT;
	}
	bump(LB_STAT_REVNAT);
	return TC_ACT_OK;
}

SEC("tc")
int lb4_to_pod(struct __sk_buff *skb)
{
	return rev_nat(skb, LOOM_OBS_TO_ENDPOINT);
}

#include "lb4_nodeport.h"

/* ---------------------------------------------------------------- cgroup: socket-level LB */

/*
 * The flow hash for Maglev on the socket path, where no packet exists yet: the client's netns cookie, the frontend,
 * and the socket's bound source port if it has one (a client that binds a fixed port gets the same backend every
 * time), else the socket cookie (every new socket is a new flow).
 */
static __always_inline __u32 sock_flow_hash(struct bpf_sock_addr *ctx, __be32 addr, __be16 port, __u8 proto)
{
	__u64 netns = bpf_get_netns_cookie(ctx);
	struct bpf_sock *sk = ctx->sk;
	__u64 who = 0;

	if (sk)
		who = sk->src_port;
	if (!who)
		who = bpf_get_socket_cookie(ctx);
	return jhash_3words((__u32)netns ^ (__u32)(netns >> 32), addr, (__u32)port | ((__u32)proto << 16),
			    (__u32)who ^ (__u32)(who >> 32));
}

/* 1 = allow (possibly rewritten), 0 = refuse (connect/sendmsg fail with EPERM). */
static __always_inline int sock_translate(struct bpf_sock_addr *ctx, __u8 proto, int remember)
{
	__be32 addr = ctx->user_ip4;
	__be16 port = (__be16)ctx->user_port;
	struct lb4_service *svc = lookup_master(addr, port, proto);
	struct lb4_backend *be = NULL;
	struct loom_ev_flow f = { .daddr = addr, .dport = port, .proto = proto };
	int report = 1;
	__u32 id;

	if (!svc)
		return 1;
	id = select_backend(addr, port, proto, svc, bpf_get_netns_cookie(ctx), 1,
			    (svc->flags & LB_SVC_FLAG_MAGLEV) ? sock_flow_hash(ctx, addr, port, proto) : 0);
	if (id)
		be = bpf_map_lookup_elem(&lb4_backends, &id);
	if (!be) {
		bump(LB_STAT_NO_BACKEND);
		loom_ev_drop_socket(LOOM_DROP_NO_SERVICE_BACKEND, &f);
		return 0;
	}
	if (remember) {
		struct lb4_sk_rev_key rkey = {
			.cookie = bpf_get_socket_cookie(ctx),
			.address = be->address,
			.port = be->port,
		};
		struct lb4_sk_rev_val rval = {
			.address = addr,
			.port = port,
			.rev_nat_index = svc->rev_nat_index,
		};

		struct lb4_sk_rev_val *had;

		/* A UDP socket's translation is one event, not one per datagram: only when its entry is new or changes. */
		if (loom_ev_on()) {
			had = bpf_map_lookup_elem(&lb4_sk_rev, &rkey);
			report = !had || had->address != addr || had->port != port;
		}
		bpf_map_update_elem(&lb4_sk_rev, &rkey, &rval, BPF_ANY);
	}
	if (report) {
		f.daddr = be->address;
		f.dport = be->port;
		loom_ev_translation(LOOM_OBS_SOCKET, 0, 0, &f, addr, port);
	}
	ctx->user_ip4 = be->address;
	ctx->user_port = (__u32)be->port;
	bump(LB_STAT_SOCK);
	return 1;
}

SEC("cgroup/connect4")
int lb4_connect4(struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 1;
	return sock_translate(ctx, (__u8)proto, proto == IPPROTO_UDP);
}

SEC("cgroup/sendmsg4")
int lb4_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_translate(ctx, IPPROTO_UDP, 1);
}

SEC("cgroup/recvmsg4")
int lb4_recvmsg4(struct bpf_sock_addr *ctx)
{
	struct lb4_sk_rev_key rkey = {
		.cookie = bpf_get_socket_cookie(ctx),
		.address = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
	};
	struct lb4_sk_rev_val *rval = bpf_map_lookup_elem(&lb4_sk_rev, &rkey);

	if (rval) {
		/* Only while the service still exists (a stale entry must not disguise another peer). */
		if (!lookup_master(rval->address, rval->port, IPPROTO_UDP)) {
			bpf_map_delete_elem(&lb4_sk_rev, &rkey);
			return 1;
		}
		ctx->user_ip4 = rval->address;
		ctx->user_port = (__u32)rval->port;
		bump(LB_STAT_SOCK_REV);
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
