// SPDX-License-Identifier: GPL-2.0
/*
 * lb4's node ports on the underlay device (lb4_from_net, lb4_to_net) and their SNAT (lb4_snat), included by lb4.c where
 * the helpers they share with the pod path (parse, rewrite, lb_flow, rev_nat) are defined; see lb4.c's header for the
 * maps and the programs. A file of its own only so each can be read in one sitting.
 */
#ifndef LOOM_LB4_NODEPORT_H
#define LOOM_LB4_NODEPORT_H

/* ---------------------------------------------------------------- tc: node ports on the underlay device */

/*
 * Sends a translated packet towards daddr as the FIB says (as if forwarded from the device it came in on): with the
 * FIB's MACs where the neighbour is known, else through the neighbour layer. The kernel's own forwarding would refuse it
 * (its source is a local address: a martian).
 */
static __always_inline int fib_redirect(struct __sk_buff *skb, const struct pkt *p, __be32 saddr, __be32 daddr)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	long rc;

	fib.family = AF_INET;
	fib.l4_protocol = p->proto;
	fib.ipv4_src = saddr;
	fib.ipv4_dst = daddr;
	fib.ifindex = skb->ifindex;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) || bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0))
			return TC_ACT_SHOT;
		return bpf_redirect(fib.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		nh.nh_family = AF_INET;
		nh.ipv4_nh = fib.ipv4_dst;
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	ev_lb_drop(skb, LOOM_OBS_FROM_NETWORK, LOOM_DROP_UNROUTABLE, p);
	return TC_ACT_SHOT;
}

/*
 * The NAT port of a flow to a remote backend (OUT entry), allocating one on its first packet: a hash of the flow
 * probed LB_SNAT_TRIES times for a port whose IN entry (backend -> node:port) is free. 0: none free.
 */
#define LB_SNAT_CLOSED_NS (2ULL * 1000000000ULL)  /* a closed TCP flow's NAT port is free again after 2 s */
#define LB_SNAT_UDP_IDLE_NS (60ULL * 1000000000ULL) /* an idle UDP flow's after 60 s */
#define LB_SNAT_IDLE_NS (600ULL * 1000000000ULL)    /* anything's after 10 minutes of silence */

/*
 * Whether the flow holding a NAT port (its IN entry e) is over, so a new flow may take the port: nothing else frees
 * them (the LRU evicts only when the whole map is full), and a backend has only 4536 ports per node. A TCP flow is
 * over once its lb4_ct entry is gone or closing (a FIN or RST seen) and it has been quiet for a moment.
 */
static __always_inline int snat_stale(const struct lb4_snat_entry *e, __u8 proto, __u64 now)
{
	struct lb4_ct_key k = {};
	struct lb4_reverse_nat *rn;
	struct lb4_ct_entry *ct;
	__u16 idx = e->rev_nat_index;
	__u64 idle;

	if (e->last_seen_ns > now)
		return 0;
	idle = now - e->last_seen_ns;
	if (idle > (proto == IPPROTO_UDP ? LB_SNAT_UDP_IDLE_NS : LB_SNAT_IDLE_NS))
		return 1;
	if (proto != IPPROTO_TCP || idle < LB_SNAT_CLOSED_NS)
		return 0;
	rn = bpf_map_lookup_elem(&lb4_revnat, &idx);
	if (!rn)
		return 1;
	k.saddr = e->address;
	k.daddr = rn->address;
	k.sport = e->port;
	k.dport = rn->port;
	k.proto = proto;
	k.dir = LB_CT_SVC;
	ct = bpf_map_lookup_elem(&lb4_ct, &k);
	return !ct || (ct->flags & LB_CT_F_CLOSING);
}

static __always_inline __be16 snat_port(const struct pkt *p, __be32 node, const struct lb4_backend *be, __u16 rev_nat)
{
	struct lb4_ct_key out = {
		.saddr = p->saddr,
		.daddr = be->address,
		.sport = p->sport,
		.dport = be->port,
		.proto = p->proto,
		.dir = LB_SNAT_OUT,
	};
	struct lb4_ct_key in = {
		.saddr = be->address,
		.daddr = node,
		.sport = be->port,
		.proto = p->proto,
		.dir = LB_SNAT_IN,
	};
	struct lb4_snat_entry back = {
		.address = p->saddr,
		.port = p->sport,
		.rev_nat_index = rev_nat,
		.last_seen_ns = bpf_ktime_get_ns(),
	};
	struct lb4_snat_entry fwd = {
		.address = node,
		.rev_nat_index = rev_nat,
		.last_seen_ns = back.last_seen_ns,
	};
	struct lb4_snat_entry *had = bpf_map_lookup_elem(&lb4_snat, &out), *rev;
	__u32 span = LB_SNAT_PORT_MAX - LB_SNAT_PORT_MIN + 1;
	__u32 start, i;

	if (had && had->address == node) {
		in.dport = had->port;
		rev = bpf_map_lookup_elem(&lb4_snat, &in);
		/* Both halves present and naming this flow: the common case. LRU eviction of the IN half re-allocates. */
		if (rev && rev->address == p->saddr && rev->port == p->sport) {
			had->last_seen_ns = back.last_seen_ns;
			rev->last_seen_ns = back.last_seen_ns;
			return had->port;
		}
	}
	start = jhash_3words(p->saddr, be->address, (__u32)p->sport | ((__u32)be->port << 16), p->proto);
	for (i = 0; i < LB_SNAT_TRIES; i++) {
		in.dport = bpf_htons((__u16)(LB_SNAT_PORT_MIN + (start + i * 7919) % span));
		if (bpf_map_update_elem(&lb4_snat, &in, &back, BPF_NOEXIST) == 0)
			goto claimed;
		rev = bpf_map_lookup_elem(&lb4_snat, &in);
		if (rev && snat_stale(rev, p->proto, back.last_seen_ns)) {
			/* The port's flow is over: forget its forward half, then the port is this flow's. */
			struct lb4_ct_key gone = {
				.saddr = rev->address,
				.daddr = be->address,
				.sport = rev->port,
				.dport = be->port,
				.proto = p->proto,
				.dir = LB_SNAT_OUT,
			};

			bpf_map_delete_elem(&lb4_snat, &gone);
			if (bpf_map_update_elem(&lb4_snat, &in, &back, BPF_ANY) == 0)
				goto claimed;
		}
	}
	return 0;
claimed:
	fwd.port = in.dport;
	bpf_map_update_elem(&lb4_snat, &out, &fwd, BPF_ANY);
	return in.dport;
}

/* A remote backend's reply to a flow lb4_from_net source-NATed: back to client from nodeIP:nodePort, out again. */
static __always_inline int snat_reply(struct __sk_buff *skb, struct pkt *p)
{
	struct lb4_ct_key in = {
		.saddr = p->saddr,
		.daddr = p->daddr,
		.sport = p->sport,
		.dport = p->dport,
		.proto = p->proto,
		.dir = LB_SNAT_IN,
	};
	struct lb4_snat_entry *e = bpf_map_lookup_elem(&lb4_snat, &in);
	struct lb4_reverse_nat *rn;
	__be32 client;
	__be16 cport;
	__u16 idx;

	if (!e)
		return LB_CONTINUE;
	idx = e->rev_nat_index;
	rn = bpf_map_lookup_elem(&lb4_revnat, &idx);
	if (!rn)
		return LB_CONTINUE;
	e->last_seen_ns = bpf_ktime_get_ns();
	client = e->address;
	cport = e->port;
	reply_seen(p, client, cport, rn, 1);
	if (rewrite(skb, p, offsetof(struct iphdr, saddr), p->saddr, rn->address, 0, p->sport, rn->port) ||
	    rewrite(skb, p, offsetof(struct iphdr, daddr), p->daddr, client, 2, p->dport, cport)) {
		ev_lb_drop(skb, LOOM_OBS_FROM_NETWORK, LOOM_DROP_INVALID_PACKET, p);
		return TC_ACT_SHOT;
	}
	bump(LB_STAT_REVNAT);
	return fib_redirect(skb, p, rn->address, client);
}

SEC("tc")
int lb4_from_net(struct __sk_buff *skb)
{
	struct lb4_service *svc;
	struct lb4_backend *be = NULL;
	struct lb4_cfg *cfg;
	struct pkt p = {};
	__u32 zero = 0;
	__be32 node;
	__be16 port;
	int rc;

	if (parse(skb, &p))
		return TC_ACT_UNSPEC;
	rc = snat_reply(skb, &p);
	if (rc != LB_CONTINUE)
		return rc;
	svc = lookup_master(p.daddr, p.dport, p.proto);
	/* ClusterIPs are not served from outside the node: the packet is the kernel's (or another filter's). */
	if (!svc || !(svc->flags & LB_SVC_FLAG_EXTERNAL)) {
		forget_reverse(&p);
		return TC_ACT_UNSPEC;
	}
	rc = lb_flow(skb, &p, svc, LOOM_OBS_FROM_NETWORK, 0, &be);
	if (rc != LB_CONTINUE || !be)
		return rc;
	if (rewrite(skb, &p, offsetof(struct iphdr, daddr), p.daddr, be->address, 2, p.dport, be->port))
		goto invalid;
	bump(LB_STAT_DNAT);
	/* A local backend (always, under Local policy) sees the client: the kernel routes the packet into the pod. */
	if ((be->flags & LB_BE_F_LOCAL) || (svc->flags & LB_SVC_FLAG_EXT_LOCAL))
		return TC_ACT_UNSPEC;
	/* A remote one gets it from this node, so the reply comes back here to be translated. */
	cfg = bpf_map_lookup_elem(&lb4_config, &zero);
	node = cfg && cfg->node_address ? cfg->node_address : p.daddr;
	port = snat_port(&p, node, be, svc->rev_nat_index);
	if (!port) {
		ev_lb_drop(skb, LOOM_OBS_FROM_NETWORK, LOOM_DROP_NAT_NO_PORT, &p);
		return TC_ACT_SHOT;
	}
	if (rewrite(skb, &p, offsetof(struct iphdr, saddr), p.saddr, node, 0, p.sport, port))
		goto invalid;
	return fib_redirect(skb, &p, node, be->address);
invalid:
	ev_lb_drop(skb, LOOM_OBS_FROM_NETWORK, LOOM_DROP_INVALID_PACKET, &p);
	return TC_ACT_SHOT;
}

SEC("tc")
int lb4_to_net(struct __sk_buff *skb)
{
	return rev_nat(skb, LOOM_OBS_TO_NETWORK);
}

#endif /* LOOM_LB4_NODEPORT_H */
