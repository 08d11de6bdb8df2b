// SPDX-License-Identifier: GPL-2.0
/*
 * Loom's eBPF masquerade (IPv4), as Cilium's BPF masquerading: pods' traffic leaving the cluster network through the
 * underlay is source-NATed to the node IP in tc, with the NAT table in BPF maps and no iptables rule.
 *
 *   masq_snat  (tc egress of the underlay device): a packet from a pod (source in masq_config's pod pool) to a
 *              destination outside masq_nonmasq (the nativeRoutingCIDR and the pod pool) gets saddr = node IP and a
 *              source port allocated per destination (TCP, UDP; ICMP echo requests: the echo id as the port).
 *   masq_denat (tc ingress of the underlay device): a reply to the node IP whose tuple is in masq_rev gets the pod's
 *              address and port back; it returns TC_ACT_UNSPEC so a later filter (host routing) still sees it.
 *              A packet to a pod from a source that would be masqueraded (another node's host, a client outside)
 *              is remembered in masq_inbound: the pod's replies to it are not a new flow and keep its address, as
 *              conntrack keeps iptables MASQUERADE off a connection that came in.
 *
 *   masq_snat_tbl LRU {pod ip, dst ip, pod port, dst port, proto} -> {nat port}
 *   masq_rev      LRU {dst ip, node ip, dst port, nat port, proto} -> {pod ip, pod port}   (the reply's tuple)
 *   masq_inbound  LRU {pod ip, remote ip, pod port, remote port, proto} -> last seen: flows opened from outside
 *   masq_nonmasq  LPM {prefix, ip} -> 1: destinations never masqueraded
 *   masq_config   [0] {node ip, pod pool, port range}
 *   masq_ifaces   ifindex -> 1: the devices the programs are attached to (bookkeeping for restarts and removal)
 *
 * Flow events (flow_events.h): a drop "no mapping for NAT masquerade" when no free port is left (the to-network trace
 * is network policy's pol_to_node, on the same device).
 *
 * Allocated ports come from [port_min, port_max] (default 61000-65535, above Linux's ephemeral range, so the node's
 * own connections do not collide). All addresses and ports are in network byte order. Mirrored by
 * src/Loom.Datapath/Masquerade/MasqueradeMaps.cs.
 */
#include "loom_common.h"
#include "flow_events.h"

#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

#define MASQ_PORT_TRIES 16

struct masq_tuple {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct masq_snat_val {
	__be16 nat_port;
	__u16 pad;
	__u32 pad2;
	__u64 last_seen_ns;
};

struct masq_rev_val {
	__be32 addr;
	__be16 port;
	__u16 pad;
	__u64 last_seen_ns;
};

struct masq_lpm_key {
	__u32 prefixlen;
	__be32 addr;
};

struct masq_cfg {
	__be32 node_ip;
	__be32 pod_net;  /* the pod pool: only these sources are masqueraded */
	__be32 pod_mask;
	__u16 port_min;  /* host byte order */
	__u16 port_max;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct masq_tuple);
	__type(value, struct masq_snat_val);
} masq_snat_tbl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct masq_tuple);
	__type(value, struct masq_rev_val);
} masq_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct masq_tuple);
	__type(value, __u64);
} masq_inbound SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct masq_lpm_key);
	__type(value, __u32);
} masq_nonmasq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct masq_cfg);
} masq_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} masq_ifaces SEC(".maps");

/*
 * 0 SNAT'd, 1 de-NAT'd, 2 skipped (destination in masq_nonmasq), 3 no free port (dropped), 4 SNAT of a new flow,
 * 5 skipped (a reply of a flow opened from outside, masq_inbound), 6 skipped (a TCP packet of a connection this program
 * never saw open: no entry and not a SYN).
 */
#define MASQ_STAT_SNAT 0
#define MASQ_STAT_DENAT 1
#define MASQ_STAT_NONMASQ 2
#define MASQ_STAT_NO_PORT 3
#define MASQ_STAT_NEW 4
#define MASQ_STAT_INBOUND 5
#define MASQ_STAT_MIDFLOW 6
#define MASQ_STAT_MAX 8

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MASQ_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} masq_stats SEC(".maps");

static __always_inline void bump(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&masq_stats, &idx);

	if (v)
		(*v)++;
}

struct pkt {
	struct masq_tuple t;
	__u32 port_off;   /* l4 offset of the port to rewrite (source on egress, destination on ingress) */
	__u32 csum_off;   /* l4 checksum offset */
	__u64 csum_flags; /* UDP: BPF_F_MARK_MANGLED_0 */
	int pseudo;       /* the L4 checksum covers the addresses (TCP, UDP; not ICMP) */
	int opens;        /* may open a flow: a TCP SYN without ACK, any UDP or ICMP echo packet */
};

/*
 * Ethernet + IPv4 + TCP/UDP/ICMP echo. ICMP uses the echo id as the port on the requester's side: a request has
 * sport = id, dport = 0; a reply sport = 0, dport = id, so a reply's tuple mirrors its request's. 0 on success.
 */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p, int egress)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl, l4;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return -1;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip) || (ip->frag_off & bpf_htons(IP_OFFSET)))
		return -1;
	l4 = ETH_HLEN + ihl;
	p->t.saddr = ip->saddr;
	p->t.daddr = ip->daddr;
	p->t.proto = ip->protocol;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)ip + ihl;

		if ((void *)(tcp + 1) > data_end)
			return -1;
		p->t.sport = tcp->source;
		p->t.dport = tcp->dest;
		p->csum_off = l4 + offsetof(struct tcphdr, check);
		p->csum_flags = 0;
		p->pseudo = 1;
		p->port_off = l4 + (egress ? offsetof(struct tcphdr, source) : offsetof(struct tcphdr, dest));
		p->opens = tcp->syn && !tcp->ack;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)ip + ihl;

		if ((void *)(udp + 1) > data_end)
			return -1;
		p->t.sport = udp->source;
		p->t.dport = udp->dest;
		p->csum_off = l4 + offsetof(struct udphdr, check);
		/* A UDP checksum of 0 means "none": keep it 0 rather than "fixing" it. */
		p->csum_flags = BPF_F_MARK_MANGLED_0;
		p->pseudo = 1;
		p->port_off = l4 + (egress ? offsetof(struct udphdr, source) : offsetof(struct udphdr, dest));
		p->opens = 1;
	} else if (ip->protocol == IPPROTO_ICMP) {
		struct icmphdr *icmp = (void *)ip + ihl;

		if ((void *)(icmp + 1) > data_end)
			return -1;
		if (icmp->type != (egress ? ICMP_ECHO : ICMP_ECHOREPLY))
			return -1;
		p->t.sport = egress ? icmp->un.echo.id : 0;
		p->t.dport = egress ? 0 : icmp->un.echo.id;
		p->csum_off = l4 + offsetof(struct icmphdr, checksum);
		p->csum_flags = 0;
		p->pseudo = 0;
		p->port_off = l4 + offsetof(struct icmphdr, un.echo.id);
		p->opens = 1;
	} else {
		return -1;
	}
	return 0;
}

/* Rewrites the address at l3 offset addr_off (saddr 12, daddr 16) and the port at p->port_off, checksums included. */
static __always_inline int rewrite(struct __sk_buff *skb, const struct pkt *p, __u32 addr_off, __be32 old_addr,
				   __be32 new_addr, __be16 old_port, __be16 new_port)
{
	if (p->pseudo &&
	    bpf_l4_csum_replace(skb, p->csum_off, old_addr, new_addr, BPF_F_PSEUDO_HDR | p->csum_flags | sizeof(new_addr)))
		return -1;
	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old_addr, new_addr, sizeof(new_addr)))
		return -1;
	if (bpf_skb_store_bytes(skb, ETH_HLEN + addr_off, &new_addr, sizeof(new_addr), 0))
		return -1;
	if (old_port != new_port) {
		if (bpf_l4_csum_replace(skb, p->csum_off, old_port, new_port, p->csum_flags | sizeof(new_port)))
			return -1;
		if (bpf_skb_store_bytes(skb, p->port_off, &new_port, sizeof(new_port), 0))
			return -1;
	}
	return 0;
}

static __always_inline struct masq_cfg *masq_cfg_get(void)
{
	__u32 zero = 0;
	struct masq_cfg *cfg = bpf_map_lookup_elem(&masq_config, &zero);

	/* Not configured yet (node IP 0): the programs leave everything alone. */
	return cfg && cfg->node_ip ? cfg : NULL;
}

/*
 * A NAT port for a new flow: random tries in the range until the reply tuple is free (BPF_NOEXIST makes the claim
 * atomic against other CPUs). The original port is tried first, as iptables MASQUERADE keeps it when it can.
 */
static __always_inline __be16 allocate(const struct masq_cfg *cfg, const struct pkt *p, struct masq_tuple *rev,
				       struct masq_rev_val *rval)
{
	__u32 span = (__u32)cfg->port_max - cfg->port_min + 1;
	__u16 port = bpf_ntohs(p->t.sport);
	int i;

	if (port < cfg->port_min || port > cfg->port_max)
		port = cfg->port_min + (__u16)(bpf_get_prandom_u32() % span);
	for (i = 0; i < MASQ_PORT_TRIES; i++) {
		rev->dport = bpf_htons(port);
		if (!bpf_map_update_elem(&masq_rev, rev, rval, BPF_NOEXIST))
			return bpf_htons(port);
		port = cfg->port_min + (__u16)(bpf_get_prandom_u32() % span);
	}
	return 0;
}

SEC("tc")
int masq_snat(struct __sk_buff *skb)
{
	/* Every packet goes on to the later filters on this hook (network policy's deferred service verdicts). */
	struct masq_lpm_key lpm = { .prefixlen = 32 };
	struct masq_snat_val *sval, nsval = {};
	struct masq_rev_val rval = {};
	struct masq_tuple rev = {};
	struct masq_cfg *cfg;
	struct pkt p = {};
	__be16 nat_port;
	__u64 now;

	cfg = masq_cfg_get();
	if (!cfg || parse(skb, &p, 1))
		return TC_ACT_UNSPEC;
	if ((p.t.saddr & cfg->pod_mask) != cfg->pod_net)
		return TC_ACT_UNSPEC;
	lpm.addr = p.t.daddr;
	if (bpf_map_lookup_elem(&masq_nonmasq, &lpm)) {
		bump(MASQ_STAT_NONMASQ);
		return TC_ACT_UNSPEC;
	}
	if (bpf_map_lookup_elem(&masq_inbound, &p.t)) {
		bump(MASQ_STAT_INBOUND);
		return TC_ACT_UNSPEC;
	}

	now = bpf_ktime_get_ns();
	/* The reply's tuple: from the destination to the node IP, ports mirrored (ICMP: sport 0, dport = id). */
	rev.saddr = p.t.daddr;
	rev.daddr = cfg->node_ip;
	rev.sport = p.t.dport;
	rev.proto = p.t.proto;
	rval.addr = p.t.saddr;
	rval.port = p.t.sport;
	rval.last_seen_ns = now;
	sval = bpf_map_lookup_elem(&masq_snat_tbl, &p.t);
	if (sval) {
		nat_port = sval->nat_port;
		sval->last_seen_ns = now;
		/* The LRU may have evicted the reverse entry alone: put it back (it is ours by construction). */
		rev.dport = nat_port;
		bpf_map_update_elem(&masq_rev, &rev, &rval, BPF_ANY);
	} else if (!p.opens) {
		/*
		 * A TCP connection that was open before this program was attached (the switch from iptables masquerade, or a
		 * flow from another node's host whose request came in before masq_denat could remember it): a new NAT port
		 * would break it, and iptables MASQUERADE also NATs only new connections. Leave it as it is.
		 */
		bump(MASQ_STAT_MIDFLOW);
		return TC_ACT_UNSPEC;
	} else {
		nat_port = allocate(cfg, &p, &rev, &rval);
		if (!nat_port) {
			struct loom_ev_flow f = {
				.saddr = p.t.saddr,
				.daddr = p.t.daddr,
				.sport = p.t.sport,
				.dport = p.t.dport,
				.proto = p.t.proto,
			};

			bump(MASQ_STAT_NO_PORT);
			loom_ev_drop(skb, LOOM_OBS_TO_NETWORK, LOOM_DROP_NAT_NO_PORT, LOOM_EVF_EGRESS, &f);
			return TC_ACT_SHOT;
		}
		nsval.nat_port = nat_port;
		nsval.last_seen_ns = now;
		bpf_map_update_elem(&masq_snat_tbl, &p.t, &nsval, BPF_ANY);
		bump(MASQ_STAT_NEW);
	}
	if (rewrite(skb, &p, offsetof(struct iphdr, saddr), p.t.saddr, cfg->node_ip, p.t.sport, nat_port))
		return TC_ACT_SHOT;
	bump(MASQ_STAT_SNAT);
	/* On to the later filters too: a pod's deferred egress verdict (a ClusterIP kube-proxy sent outside) is taken there. */
	return TC_ACT_UNSPEC;
}

/* A packet to a pod from a source its replies would be masqueraded to: the flow is remembered as the pod's reply. */
static __always_inline void remember_inbound(const struct masq_cfg *cfg, const struct pkt *p)
{
	struct masq_lpm_key lpm = { .prefixlen = 32, .addr = p->t.saddr };
	struct masq_tuple reply = {
		.saddr = p->t.daddr,
		.daddr = p->t.saddr,
		.sport = p->t.dport,
		.dport = p->t.sport,
		.proto = p->t.proto,
	};
	__u64 now = bpf_ktime_get_ns();
	__u64 *seen;

	if ((p->t.daddr & cfg->pod_mask) != cfg->pod_net || bpf_map_lookup_elem(&masq_nonmasq, &lpm))
		return;
	seen = bpf_map_lookup_elem(&masq_inbound, &reply);
	if (seen)
		*seen = now;
	else
		bpf_map_update_elem(&masq_inbound, &reply, &now, BPF_ANY);
}

SEC("tc")
int masq_denat(struct __sk_buff *skb)
{
	struct masq_rev_val *rval;
	struct masq_cfg *cfg;
	struct pkt p = {};

	cfg = masq_cfg_get();
	if (!cfg || parse(skb, &p, 0))
		return TC_ACT_UNSPEC;
	if (p.t.daddr != cfg->node_ip) {
		remember_inbound(cfg, &p);
		return TC_ACT_UNSPEC;
	}
	rval = bpf_map_lookup_elem(&masq_rev, &p.t);
	if (!rval)
		return TC_ACT_UNSPEC;
	rval->last_seen_ns = bpf_ktime_get_ns();
	if (rewrite(skb, &p, offsetof(struct iphdr, daddr), p.t.daddr, rval->addr, p.t.dport, rval->port))
		return TC_ACT_SHOT;
	bump(MASQ_STAT_DENAT);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
