// SPDX-License-Identifier: GPL-2.0
/*
 * Loom's eBPF host routing (IPv4), as Cilium's: pod traffic is forwarded by tc programs straight to the next device,
 * skipping the node's IP stack (routing, netfilter, qdiscs of the host-side veth):
 *
 *   hr_from_pod      (tc ingress of a pod's host-side veth = traffic from the pod): bpf_fib_lookup the destination;
 *                    a local pod (the FIB answers with another pod's host veth) -> bpf_redirect_peer into that pod's
 *                    namespace; anything else the FIB forwards -> bpf_redirect_neigh out of the FIB's device (the
 *                    underlay or a tunnel device; the kernel resolves the next hop's MAC); what the FIB cannot resolve
 *                    (local address, no route, MTU exceeded, TTL expiring) -> TC_ACT_OK, the host stack handles it.
 *   hr_from_underlay (tc ingress of the underlay device): traffic the FIB sends to a local pod's veth ->
 *                    bpf_redirect_peer into the pod; everything else -> TC_ACT_OK.
 *
 * Delivery to a local pod skips its host veth's egress hook (and any program there, e.g. the service load balancer's
 * reverse NAT, lb4_to_pod). With HR_F_EGRESS_DELIVERY in hr_config, local pods get their packets with bpf_redirect_neigh
 * out of the host veth instead, so those programs still run (at the price of the veth's transmit path).
 *
 * A flow the kernel's conntrack translates (kube-proxy's DNAT or iptables MASQUERADE, opened before the node switched
 * to eBPF services and masquerade) is left to the host stack, both ways, until it ends: only netfilter holds its NAT.
 *
 * Which veths are pods' is the agent's knowledge, not the FIB's: hr_ifaces marks them (and records every device a
 * program is attached to, so a restarted agent or Remove finds them). Counters: hr_stats, per program and reason.
 * Flow events (flow_events.h): hr_from_pod traces to-stack for the IPv4 packets it leaves to the host stack, and
 * to-endpoint for those it hands straight into a local pod with bpf_redirect_peer (which skips the host veth's egress,
 * and with it policy's to-endpoint trace).
 * Mirrored by src/Loom.Datapath/Routing/HostRoutingMaps.cs.
 */
#include "loom_common.h"
#include "flow_events.h"

#define HR_IFACE_POD 1
#define HR_IFACE_UNDERLAY 2

/* Reasons (per program: index = program * HR_REASONS + reason). */
#define HR_REDIRECT_PEER 0
#define HR_REDIRECT_NEIGH 1
#define HR_PASS_NOT_IPV4 2  /* not IPv4, or options/fragments the parser does not follow */
#define HR_PASS_LOCAL 3     /* BPF_FIB_LKUP_RET_NOT_FWDED: for this node, or no route at all */
#define HR_PASS_NO_ROUTE 4  /* a blackhole, unreachable or prohibit route */
#define HR_PASS_FRAG 5      /* exceeds the egress MTU: the stack fragments or sends ICMP */
#define HR_PASS_TTL 6       /* TTL would expire: the stack sends ICMP time exceeded */
#define HR_PASS_OTHER 7     /* forwarding disabled, LWT, no source address, not a pod (underlay), same device */
#define HR_REDIRECT_EGRESS 8 /* to a local pod through its host veth's egress (HR_F_EGRESS_DELIVERY) */
#define HR_PASS_KERNEL_NAT 9 /* a flow the kernel's conntrack NATs: only the stack translates it */
#define HR_REASONS 10

#define BPF_F_CURRENT_NETNS (-1)

/* nf_conntrack's kfuncs (kernel 6.0+, conntrack built in or loaded). */
extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u32 tuple_size,
					 struct bpf_ct_opts *opts, __u32 opts_size) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

#define HR_F_EGRESS_DELIVERY 1

#define HR_PROG_FROM_POD 0
#define HR_PROG_FROM_UNDERLAY 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);   /* ifindex in the node namespace */
	__type(value, __u32); /* HR_IFACE_* */
} hr_ifaces SEC(".maps");

struct hr_cfg {
	__u32 flags; /* HR_F_* */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hr_cfg);
} hr_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * HR_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} hr_stats SEC(".maps");

static __always_inline int count(__u32 prog, __u32 reason, int verdict)
{
	__u32 idx = prog * HR_REASONS + reason;
	__u64 *v = bpf_map_lookup_elem(&hr_stats, &idx);

	if (v)
		(*v)++;
	return verdict;
}

static __always_inline int is_pod_iface(__u32 ifindex)
{
	__u32 *role = bpf_map_lookup_elem(&hr_ifaces, &ifindex);

	return role && *role == HR_IFACE_POD;
}

/* Forwarding is a hop: TTL - 1 with the header checksum patched (the word holding TTL and protocol). */
static __always_inline int decrement_ttl(struct __sk_buff *skb, struct iphdr *ip)
{
	__be16 old = *(__be16 *)&ip->ttl;
	__be16 new;

	ip->ttl--;
	new = *(__be16 *)&ip->ttl;
	return bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old, new, sizeof(new));
}

static __always_inline __u32 pass_reason(long rc)
{
	switch (rc) {
	case BPF_FIB_LKUP_RET_NOT_FWDED:
		return HR_PASS_LOCAL;
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		return HR_PASS_NO_ROUTE;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return HR_PASS_FRAG;
	default:
		return HR_PASS_OTHER;
	}
}

/*
 * Whether the kernel's conntrack has a NAT binding for this TCP or UDP packet's flow (in either direction): the flow
 * was translated by netfilter, and bypassing the stack would send it on untranslated.
 */
static __always_inline int kernel_nat(struct __sk_buff *skb, struct iphdr *ip, void *data_end)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_ct_opts opts = { .netns_id = BPF_F_CURRENT_NETNS };
	struct nf_conn *ct;
	__u16 *ports = (void *)(ip + 1);
	unsigned long status;

	if ((ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP) || ip->ihl != 5 ||
	    (ip->frag_off & bpf_htons(0x1FFF)) || (void *)(ports + 2) > data_end)
		return 0;
	tuple.ipv4.saddr = ip->saddr;
	tuple.ipv4.daddr = ip->daddr;
	tuple.ipv4.sport = ports[0];
	tuple.ipv4.dport = ports[1];
	opts.l4proto = ip->protocol;
	ct = bpf_skb_ct_lookup(skb, &tuple, sizeof(tuple.ipv4), &opts, sizeof(opts));
	if (!ct)
		return 0;
	status = ct->status;
	bpf_ct_release(ct);
	return (status & (IPS_SRC_NAT | IPS_DST_NAT)) != 0;
}

/* A trace of a pod's IPv4 packet (read before any helper that invalidates ip); nothing when events are off. */
static __always_inline void hr_trace(struct __sk_buff *skb, struct iphdr *ip, __u8 obs)
{
	struct loom_ev_flow f = {};
	__u8 l4[14];
	__u32 off;

	if (!loom_ev_on())
		return;
	f.saddr = ip->saddr;
	f.daddr = ip->daddr;
	f.proto = ip->protocol;
	off = ETH_HLEN + (ip->ihl & 0xF) * 4;
	if (!(ip->frag_off & bpf_htons(0x1FFF))) {
		if (f.proto == IPPROTO_TCP && bpf_skb_load_bytes(skb, off, l4, 14) == 0) {
			__builtin_memcpy(&f.sport, &l4[0], 2);
			__builtin_memcpy(&f.dport, &l4[2], 2);
			f.tcp_flags = l4[13];
		} else if (f.proto == IPPROTO_UDP && bpf_skb_load_bytes(skb, off, l4, 4) == 0) {
			__builtin_memcpy(&f.sport, &l4[0], 2);
			__builtin_memcpy(&f.dport, &l4[2], 2);
		}
	}
	loom_ev_trace(skb, obs, 0, &f);
}

/* A packet left to the host stack: counted, and for a pod's packet traced to-stack. */
static __always_inline int pass(struct __sk_buff *skb, struct iphdr *ip, __u32 prog, __u32 reason)
{
	if (prog == HR_PROG_FROM_POD)
		hr_trace(skb, ip, LOOM_OBS_TO_STACK);
	return count(prog, reason, TC_ACT_OK);
}

/*
 * The shared path: FIB lookup as if the packet were forwarded from the device it came in on, then either into a
 * local pod (peer redirect) or, when from_pod, out of the FIB's device via the neighbour subsystem.
 */
static __always_inline int route(struct __sk_buff *skb, __u32 prog)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	struct iphdr *ip;
	long rc;
	int to_pod, egress;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return count(prog, HR_PASS_NOT_IPV4, TC_ACT_OK);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->version != 4)
		return count(prog, HR_PASS_NOT_IPV4, TC_ACT_OK);

	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = skb->ifindex;
	/* tot_len 0: the kernel checks the MTU against the skb itself, GSO-aware (a pod's TSO super-packet fits). */
	fib.tot_len = 0;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return pass(skb, ip, prog, pass_reason(rc));
	if (fib.ifindex == skb->ifindex)
		return pass(skb, ip, prog, HR_PASS_OTHER);
	to_pod = is_pod_iface(fib.ifindex);
	if (!to_pod && prog != HR_PROG_FROM_POD)
		return count(prog, HR_PASS_OTHER, TC_ACT_OK);
	if (ip->ttl <= 1)
		return pass(skb, ip, prog, HR_PASS_TTL);
	if (kernel_nat(skb, ip, data_end))
		return pass(skb, ip, prog, HR_PASS_KERNEL_NAT);
	egress = 0;
	if (to_pod) {
		__u32 zero = 0;
		struct hr_cfg *cfg = bpf_map_lookup_elem(&hr_config, &zero);

		egress = cfg && (cfg->flags & HR_F_EGRESS_DELIVERY);
		/* Peer delivery skips the host veth's egress, where policy would trace it. */
		if (!egress)
			hr_trace(skb, ip, LOOM_OBS_TO_ENDPOINT);
	}

	if (to_pod && rc == BPF_FIB_LKUP_RET_SUCCESS) {
		/* The pod's stack already took the packet as PACKET_HOST; proper MACs keep captures and ARP state sane. */
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	}
	/* The gateway (or the destination itself on a connected route), read before the helpers invalidate ip. */
	nh.nh_family = AF_INET;
	nh.ipv4_nh = fib.ipv4_dst;
	if (decrement_ttl(skb, ip))
		return TC_ACT_SHOT;
	if (to_pod) {
		/* Through the neighbour layer: the pod's MAC is resolved (or queued for ARP) and the veth's egress runs. */
		if (egress)
			return count(prog, HR_REDIRECT_EGRESS, bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0));
		return count(prog, HR_REDIRECT_PEER, bpf_redirect_peer(fib.ifindex, 0));
	}
	return count(prog, HR_REDIRECT_NEIGH, bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0));
}

SEC("tc")
int hr_from_pod(struct __sk_buff *skb)
{
	return route(skb, HR_PROG_FROM_POD);
}

SEC("tc")
int hr_from_underlay(struct __sk_buff *skb)
{
	return route(skb, HR_PROG_FROM_UNDERLAY);
}

char LICENSE[] SEC("license") = "GPL";
