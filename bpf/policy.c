// SPDX-License-Identifier: GPL-2.0
/*
 * Loom's eBPF network policy (IPv4), as Cilium's: identities, per-endpoint allow maps and a stateful connection table.
 *
 *   pol_from_pod (tc ingress of a pod's host veth = the pod's EGRESS: the peer is the destination)
 *   pol_to_pod   (tc egress of a pod's host veth = the pod's INGRESS: the peer is the source)
 *   pol_to_node  (tc egress of the tunnel device / underlay: only the deferred egress verdicts, see below)
 *   pol_from_node (tc ingress of the tunnel device / underlay: only a flow event trace)
 *
 * A packet of a known connection passes: its own {tuple, dir} in pol_ct (established: it keeps its verdict after the
 * rules change, until it closes) or the reversed tuple in the other direction (a reply). Otherwise the peer's identity
 * comes from pol_ipcache (longest prefix; no match = world) and pol_rules is looked up with it, then with the identity
 * of the ipBlock region the peer falls in (pol_cidr), then with identity 0 (any peer); any hit allows, and an allowed
 * packet creates its {tuple, dir} entry. Endpoints that are not enforced in a direction pass and still record entries,
 * so a policy that arrives later does not cut open connections. Packets of unmanaged veths, non-IPv4 packets and
 * non-first fragments pass.
 *
 * Deferred egress: kube-proxy (iptables/nftables) translates a ClusterIP after tc, so a packet from a pod to an address
 * in the service range that pol_ipcache does not know is only recorded ({pod -> VIP, EGRESS}: the reverse-NATed replies
 * match it) and marked with the endpoint; the verdict is taken where the post-DNAT packet leaves the node's stack
 * (pol_to_pod for a local backend, pol_to_node for a remote one) against the endpoint's egress rules.
 *
 * ICMP: echo requests carry the echo id as the source port and 0 as the destination port, echo replies the reverse, so
 * a reply finds its request's entry. An error (unreachable, time exceeded, parameter problem) quoting a packet of a
 * tracked flow passes as related; other ICMP messages have ports 0 and are judged as a new flow.
 * Flow events (flow_events.h): traces at from-endpoint / to-endpoint of the packets that pass (a dropped one gets a
 * drop event instead), to-/from-overlay and to-/from-network on the node devices (pol_ifaces' role says which), drops
 * with their reason, and a policy verdict where a new connection is judged by rules (or the deferred verdict).
 * Mirrored by src/Loom.Linux/Bpf/PolicyMaps.cs.
 */
#include "loom_common.h"
#include "flow_events.h"

#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_SCTP 132

#define ETH_P_ARP 0x0806

#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define POL_DIR_INGRESS 0
#define POL_DIR_EGRESS 1

#define POL_ID_HOST 1
#define POL_ID_WORLD 2

#define POL_EP_ENFORCE_INGRESS 1
#define POL_EP_ENFORCE_EGRESS 2

#define POL_F_ENABLED 1
#define POL_F_ALLOW_HOST 2

#define POL_IFACE_ENDPOINT 1
#define POL_IFACE_NODE 2    /* the underlay: to-network, from-network */
#define POL_IFACE_OVERLAY 3 /* a tunnel device: to-overlay, from-overlay */

#define POL_CT_F_CLOSING 1

/* skb->mark of a deferred packet: (ep_id << 16) | DEFER, or | OPEN when the endpoint does not enforce egress (only
 * recorded). kube-proxy's bits are 0x4000 / 0x8000. */
#define POL_MARK_MASK 0x0F00
#define POL_MARK_DEFER 0x0E00
#define POL_MARK_OPEN 0x0F00

#define SEC_NS 1000000000ULL
#define POL_CT_TCP_NS (6 * 3600 * SEC_NS)
#define POL_CT_CLOSING_NS (10 * SEC_NS)
#define POL_CT_OTHER_NS (60 * SEC_NS)

/* pol_stats indexes. */
#define POL_ALLOWED_RULE 0
#define POL_ALLOWED_ESTABLISHED 1
#define POL_ALLOWED_REPLY 2
#define POL_ALLOWED_NOT_ENFORCED 3
#define POL_ALLOWED_HOST 4
#define POL_DROPPED_INGRESS 5
#define POL_DROPPED_EGRESS 6
#define POL_PASS_NOT_IPV4 7
#define POL_PASS_UNMANAGED 8
#define POL_PASS_DISABLED 9
#define POL_DEFERRED 10
#define POL_DEFERRED_ALLOWED 11
#define POL_DEFERRED_DROPPED 12
#define POL_PASS_FRAGMENT 13
#define POL_ALLOWED_RELATED 14
#define POL_DROPPED_SPOOFED 15  /* from a pod with a source address that is not its own */
#define POL_DROPPED_NOT_IPV4 16 /* IPv6 or another L3 protocol to or from an enforced endpoint (ARP passes) */
#define POL_REASONS 20

/* Prefix lengths: ep_id (32) + identity (32) + dir (8) = 72, + proto (8), + port (16). */
#define POL_RULE_FULL 96
/* ep_id (32) + dir (8) + pad (24) = 64, + the address. */
#define POL_CIDR_FULL 96

struct pol_lpm_ip {
	__u32 prefixlen;
	__be32 ip;
};

struct pol_ident {
	__u32 identity;
	__u32 flags;
};

struct pol_endpoint {
	__u32 ep_id;
	__u32 identity;
	__u32 flags; /* POL_EP_ENFORCE_* */
	__be32 ip;   /* the pod's IPv4 address: anything else it sends is spoofed (0: not checked) */
};

struct pol_rule_key {
	__u32 prefixlen;
	__u32 ep_id;
	__u32 identity;
	__u8 dir;
	__u8 proto;
	__be16 port;
};

struct pol_rule_val {
	__u32 flags;
};

struct pol_cidr_key {
	__u32 prefixlen;
	__u32 ep_id;
	__u8 dir;
	__u8 pad[3];
	__be32 ip;
};

struct pol_cidr_val {
	__u32 identity;
};

struct pol_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;
	__u16 pad;
};

struct pol_ct_val {
	__u64 last_seen_ns;
	__u32 flags; /* POL_CT_F_* */
	__u32 ep_id;
};

#define POL_TUNNEL_PORTS 4

struct pol_cfg {
	__u32 flags; /* POL_F_* */
	__be32 svc_net;
	__be32 svc_mask;
	__be16 tunnel_ports[POL_TUNNEL_PORTS]; /* the node's VXLAN ports (0: unused): not traced on the underlay */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pol_lpm_ip);
	__type(value, struct pol_ident);
} pol_ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* ifindex of the host veth */
	__type(value, struct pol_endpoint);
} pol_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144); /* every endpoint's entries; not preallocated */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pol_rule_key);
	__type(value, struct pol_rule_val);
} pol_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pol_cidr_key);
	__type(value, struct pol_cidr_val);
} pol_cidr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct pol_ct_key);
	__type(value, struct pol_ct_val);
} pol_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pol_cfg);
} pol_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * POL_REASONS); /* per direction: ingress, then egress */
	__type(key, __u32);
	__type(value, __u64);
} pol_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* POL_IFACE_* */
} pol_ifaces SEC(".maps");

/* A parsed packet: its tuple as it travels (t.dir unused), the TCP flags, and for an ICMP error the tuple of the
 * packet it quotes (related). */
struct pol_pkt {
	struct pol_ct_key t;
	struct pol_ct_key inner;
	__u8 tcp_flags;
	__u8 related;
	__u8 reply; /* set by ct_lookup: a reply of a tracked connection (flow events) */
};

#define PARSE_OK 0
#define PARSE_NOT_IPV4 1
#define PARSE_FRAGMENT 2
#define PARSE_INVALID 3 /* says IPv4, but its header cannot be read or is malformed */

#define CT_NEW 0
#define CT_ESTABLISHED 1
#define CT_REPLY 2

/* pol_stats[dir * POL_REASONS + reason]: the endpoint's direction (a deferred verdict is its sender's egress). */
static __always_inline int count(__u32 reason, __u8 dir, int verdict)
{
	__u32 key = (dir == POL_DIR_EGRESS ? POL_REASONS : 0) + reason;
	__u64 *v = bpf_map_lookup_elem(&pol_stats, &key);

	if (v)
		(*v)++;
	return verdict;
}

static __always_inline struct pol_cfg *pol_enabled(void)
{
	__u32 zero = 0;
	struct pol_cfg *cfg = bpf_map_lookup_elem(&pol_config, &zero);

	return cfg && (cfg->flags & POL_F_ENABLED) ? cfg : 0;
}

/* The header an ICMP error quotes (the packet that caused it): its tuple, in p->inner, with p->related set. */
static __always_inline void parse_quoted(struct __sk_buff *skb, __u32 off, struct pol_pkt *p)
{
	struct iphdr ip;
	__be16 ports[2];

	if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) || ip.version != 4 || ip.ihl < 5)
		return;
	p->inner.saddr = ip.saddr;
	p->inner.daddr = ip.daddr;
	p->inner.proto = ip.protocol;
	if (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP || ip.protocol == IPPROTO_SCTP) {
		if (bpf_skb_load_bytes(skb, off + (ip.ihl & 0xF) * 4, ports, sizeof(ports)))
			return;
		p->inner.sport = ports[0];
		p->inner.dport = ports[1];
	} else if (ip.protocol == IPPROTO_ICMP) {
		/* A quoted echo request: its id is its tuple's source port, as parse() keys it. */
		if (bpf_skb_load_bytes(skb, off + (ip.ihl & 0xF) * 4, ports, sizeof(ports)))
			return;
		if ((bpf_ntohs(ports[0]) >> 8) != ICMP_ECHO)
			return;
		if (bpf_skb_load_bytes(skb, off + (ip.ihl & 0xF) * 4 + 4, ports, 2))
			return;
		p->inner.sport = ports[0];
	}
	p->related = 1;
}

static __always_inline int parse(struct __sk_buff *skb, struct pol_pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 l4;
	__u8 l4h[14] = {};

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return PARSE_NOT_IPV4;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end) {
		/* An IPv4 header outside the linear part (a crafted GSO packet): pull it in; what still cannot be read is
		 * not judged as "not IPv4" but refused. */
		if (bpf_skb_pull_data(skb, ETH_HLEN + sizeof(struct iphdr)))
			return PARSE_INVALID;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		eth = data;
		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return PARSE_INVALID;
	}
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_INVALID;
	p->t.saddr = ip->saddr;
	p->t.daddr = ip->daddr;
	p->t.proto = ip->protocol;
	/* A later fragment has no ports; without its first fragment it does not reassemble into anything. */
	if (ip->frag_off & bpf_htons(0x1FFF))
		return PARSE_FRAGMENT;
	l4 = ETH_HLEN + ip->ihl * 4;
	switch (p->t.proto) {
	case IPPROTO_TCP:
		if (bpf_skb_load_bytes(skb, l4, l4h, 14) == 0) {
			__builtin_memcpy(&p->t.sport, &l4h[0], 2);
			__builtin_memcpy(&p->t.dport, &l4h[2], 2);
			p->tcp_flags = l4h[13];
		}
		break;
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		if (bpf_skb_load_bytes(skb, l4, l4h, 4) == 0) {
			__builtin_memcpy(&p->t.sport, &l4h[0], 2);
			__builtin_memcpy(&p->t.dport, &l4h[2], 2);
		}
		break;
	case IPPROTO_ICMP:
		if (bpf_skb_load_bytes(skb, l4, l4h, 8) == 0) {
			if (l4h[0] == ICMP_ECHO)
				__builtin_memcpy(&p->t.sport, &l4h[4], 2);
			else if (l4h[0] == ICMP_ECHOREPLY)
				__builtin_memcpy(&p->t.dport, &l4h[4], 2);
			else if (l4h[0] == ICMP_DEST_UNREACH || l4h[0] == ICMP_TIME_EXCEEDED || l4h[0] == ICMP_PARAMETERPROB)
				parse_quoted(skb, l4 + 8, p);
		}
		break;
	}
	return PARSE_OK;
}

static __always_inline __u64 ct_lifetime(const struct pol_ct_val *v, __u8 proto)
{
	if (v->flags & POL_CT_F_CLOSING)
		return POL_CT_CLOSING_NS;
	return proto == IPPROTO_TCP ? POL_CT_TCP_NS : POL_CT_OTHER_NS;
}

static __always_inline void ct_touch(struct pol_ct_val *v, const struct pol_pkt *p, __u64 now)
{
	v->last_seen_ns = now;
	if (p->t.proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FIN | TCP_RST)))
		v->flags |= POL_CT_F_CLOSING;
}

/* Whether an entry is stale for this packet: expired, or a closing TCP entry a fresh SYN reuses (a new connection). */
static __always_inline int ct_stale(const struct pol_ct_val *v, const struct pol_pkt *p, __u64 now)
{
	if (now - v->last_seen_ns > ct_lifetime(v, p->t.proto))
		return 1;
	return p->t.proto == IPPROTO_TCP && (v->flags & POL_CT_F_CLOSING) &&
	       (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
}

static __always_inline int ct_lookup(struct pol_pkt *p, __u8 dir, __u64 now)
{
	struct pol_ct_key k = p->t;
	struct pol_ct_val *v;

	k.dir = dir;
	k.pad = 0;
	v = bpf_map_lookup_elem(&pol_ct, &k);
	if (v) {
		if (!ct_stale(v, p, now)) {
			ct_touch(v, p, now);
			return CT_ESTABLISHED;
		}
		bpf_map_delete_elem(&pol_ct, &k);
	}
	k.saddr = p->t.daddr;
	k.daddr = p->t.saddr;
	k.sport = p->t.dport;
	k.dport = p->t.sport;
	k.dir = dir ^ 1;
	v = bpf_map_lookup_elem(&pol_ct, &k);
	if (v) {
		if (now - v->last_seen_ns <= ct_lifetime(v, p->t.proto)) {
			ct_touch(v, p, now);
			p->reply = 1;
			return CT_REPLY;
		}
		bpf_map_delete_elem(&pol_ct, &k);
	}
	return CT_NEW;
}

/*
 * Flow events only: marks p a reply if pol_ct tracks its reversed tuple in dir (the direction, at the endpoint, of the
 * connection's first packet). Read-only: a trace point that judges nothing refreshes and creates nothing.
 */
static __always_inline void ct_mark_reply(struct pol_pkt *p, __u8 dir, __u64 now)
{
	struct pol_ct_key k = {
		.saddr = p->t.daddr,
		.daddr = p->t.saddr,
		.sport = p->t.dport,
		.dport = p->t.sport,
		.proto = p->t.proto,
		.dir = dir,
	};
	struct pol_ct_val *v = bpf_map_lookup_elem(&pol_ct, &k);

	if (v && now - v->last_seen_ns <= ct_lifetime(v, p->t.proto))
		p->reply = 1;
}

/*
 * Whether an ICMP error in dir is about a tracked flow: the quoted packet went the other way through this hop (its own
 * entry in the other direction, or the reversed tuple of one in this direction).
 */
static __always_inline int ct_related(const struct pol_pkt *p, __u8 dir)
{
	struct pol_ct_key k = p->inner;

	/* An error goes back to whoever sent the packet it quotes: anything else uses a tracked tuple as a pass. */
	if (p->t.daddr != p->inner.saddr)
		return 0;
	k.dir = dir ^ 1;
	k.pad = 0;
	if (bpf_map_lookup_elem(&pol_ct, &k))
		return 1;
	k.saddr = p->inner.daddr;
	k.daddr = p->inner.saddr;
	k.sport = p->inner.dport;
	k.dport = p->inner.sport;
	k.dir = dir;
	return bpf_map_lookup_elem(&pol_ct, &k) != 0;
}

static __always_inline void ct_create(const struct pol_pkt *p, __u8 dir, __u32 ep_id, __u64 now)
{
	struct pol_ct_key k = p->t;
	struct pol_ct_val v = { .last_seen_ns = now, .ep_id = ep_id };

	k.dir = dir;
	k.pad = 0;
	ct_touch(&v, p, now);
	bpf_map_update_elem(&pol_ct, &k, &v, BPF_ANY);
}

static __always_inline __u32 identity_of(__be32 ip)
{
	struct pol_lpm_ip k = { .prefixlen = 32, .ip = ip };
	struct pol_ident *id = bpf_map_lookup_elem(&pol_ipcache, &k);

	return id && id->identity ? id->identity : POL_ID_WORLD;
}

/*
 * Whether ep_id's rules allow the peer in dir: its identity, then its ipBlock region's, then any peer (identity 0).
 * *matched becomes the identity the peer was judged as (its region's if it falls in one), for the verdict event.
 */
static __always_inline int rule_allows(__u32 ep_id, __u8 dir, __be32 peer, __u32 identity, const struct pol_pkt *p,
				       __u32 *matched)
{
	struct pol_rule_key k = {
		.prefixlen = POL_RULE_FULL,
		.ep_id = ep_id,
		.identity = identity,
		.dir = dir,
		.proto = p->t.proto,
	};
	struct pol_cidr_key ck = { .prefixlen = POL_CIDR_FULL, .ep_id = ep_id, .dir = dir, .ip = peer };
	struct pol_cidr_val *region;

	*matched = identity;
	if (p->t.proto == IPPROTO_TCP || p->t.proto == IPPROTO_UDP || p->t.proto == IPPROTO_SCTP)
		k.port = p->t.dport;
	if (bpf_map_lookup_elem(&pol_rules, &k))
		return 1;
	region = bpf_map_lookup_elem(&pol_cidr, &ck);
	if (region) {
		*matched = region->identity;
		k.identity = region->identity;
		if (bpf_map_lookup_elem(&pol_rules, &k))
			return 1;
	}
	k.identity = 0;
	return bpf_map_lookup_elem(&pol_rules, &k) != 0;
}

/* p as an event's flow: the endpoint's identity on its side (EGRESS: the source), the peer's (0: unknown) on the other. */
static __always_inline void ev_flow(struct loom_ev_flow *f, const struct pol_pkt *p, __u32 ep_id, __u32 ep_identity,
				    __u8 dir, __u32 peer_identity)
{
	f->saddr = p->t.saddr;
	f->daddr = p->t.daddr;
	f->sport = p->t.sport;
	f->dport = p->t.dport;
	f->proto = p->t.proto;
	f->tcp_flags = p->tcp_flags;
	f->ep_id = ep_id;
	f->src_identity = dir == POL_DIR_EGRESS ? ep_identity : peer_identity;
	f->dst_identity = dir == POL_DIR_EGRESS ? peer_identity : ep_identity;
}

static __always_inline __u8 ev_flags(const struct pol_pkt *p, __u8 dir)
{
	return (p->reply ? LOOM_EVF_REPLY : 0) | (dir == POL_DIR_EGRESS ? LOOM_EVF_EGRESS : 0);
}

/* A packet that passes at obs (ep: the endpoint of the veth, NULL on a node device). */
static __always_inline void ev_trace(struct __sk_buff *skb, __u8 obs, const struct pol_pkt *p,
				     const struct pol_endpoint *ep, __u8 dir)
{
	struct loom_ev_flow f;

	ev_flow(&f, p, ep ? ep->ep_id : 0, ep ? ep->identity : 0, dir, 0);
	loom_ev_trace(skb, obs, p->reply ? LOOM_EVF_REPLY : 0, &f);
}

static __always_inline void ev_drop(struct __sk_buff *skb, __u8 obs, __u8 reason, const struct pol_pkt *p,
				    __u32 ep_id, __u32 ep_identity, __u8 dir, __u32 peer_identity)
{
	struct loom_ev_flow f;

	ev_flow(&f, p, ep_id, ep_identity, dir, peer_identity);
	loom_ev_drop(skb, obs, reason, ev_flags(p, dir), &f);
}

/* The verdict on a new connection judged by rules; a denial is also a drop. reason: the pol_stats index. */
static __always_inline void ev_verdict(struct __sk_buff *skb, __u8 obs, const struct pol_pkt *p, __u32 ep_id,
				       __u32 ep_identity, __u8 dir, __u32 peer_identity, __u8 reason, int allowed)
{
	struct loom_ev_flow f;

	if (!loom_ev_on())
		return;
	ev_flow(&f, p, ep_id, ep_identity, dir, peer_identity);
	loom_ev_policy(skb, obs, reason, ev_flags(p, dir) | (allowed ? LOOM_EVF_ALLOWED : 0), &f);
	if (!allowed)
		loom_ev_drop(skb, obs, reason == POL_DEFERRED_DROPPED ? LOOM_DROP_POLICY_DEFERRED : LOOM_DROP_POLICY_DENIED,
			     ev_flags(p, dir), &f);
}

/* The verdict for a packet of endpoint ep in dir (INGRESS: the peer is the source, EGRESS: the destination). */
static __always_inline int enforce(struct __sk_buff *skb, __u8 obs, struct pol_pkt *p, const struct pol_endpoint *ep,
				   __u8 dir, const struct pol_cfg *cfg, __u64 now)
{
	__u32 enforced = ep->flags & (dir == POL_DIR_INGRESS ? POL_EP_ENFORCE_INGRESS : POL_EP_ENFORCE_EGRESS);
	__be32 peer = dir == POL_DIR_INGRESS ? p->t.saddr : p->t.daddr;
	__u32 identity, matched, reason;

	switch (ct_lookup(p, dir, now)) {
	case CT_ESTABLISHED:
		return count(POL_ALLOWED_ESTABLISHED, dir, TC_ACT_UNSPEC);
	case CT_REPLY:
		return count(POL_ALLOWED_REPLY, dir, TC_ACT_UNSPEC);
	}
	/* Port unreachable, fragmentation needed, TTL exceeded for a flow allowed before: passes, creates nothing. */
	if (p->related && ct_related(p, dir))
		return count(POL_ALLOWED_RELATED, dir, TC_ACT_UNSPEC);
	if (!enforced) {
		ct_create(p, dir, ep->ep_id, now);
		return count(POL_ALLOWED_NOT_ENFORCED, dir, TC_ACT_UNSPEC);
	}
	identity = identity_of(peer);
	if (dir == POL_DIR_INGRESS && identity == POL_ID_HOST && (cfg->flags & POL_F_ALLOW_HOST)) {
		ct_create(p, dir, ep->ep_id, now);
		ev_verdict(skb, obs, p, ep->ep_id, ep->identity, dir, identity, POL_ALLOWED_HOST, 1);
		return count(POL_ALLOWED_HOST, dir, TC_ACT_UNSPEC);
	}
	if (rule_allows(ep->ep_id, dir, peer, identity, p, &matched)) {
		ct_create(p, dir, ep->ep_id, now);
		ev_verdict(skb, obs, p, ep->ep_id, ep->identity, dir, matched, POL_ALLOWED_RULE, 1);
		return count(POL_ALLOWED_RULE, dir, TC_ACT_UNSPEC);
	}
	reason = dir == POL_DIR_INGRESS ? POL_DROPPED_INGRESS : POL_DROPPED_EGRESS;
	ev_verdict(skb, obs, p, ep->ep_id, ep->identity, dir, matched, reason, 0);
	return count(reason, dir, TC_ACT_SHOT);
}

/*
 * The egress verdict a pol_from_pod deferred to after the kernel's DNAT: -1 if the packet carries no deferral mark,
 * else UNSPEC or SHOT, the mark cleared. The marking endpoint's egress rules judge the post-DNAT destination.
 */
static __always_inline int deferred(struct __sk_buff *skb, struct pol_pkt *p, __u64 now, __u8 obs)
{
	__u32 mark = skb->mark;
	__u32 tag = mark & POL_MARK_MASK;
	__u32 ep_id = mark >> 16;
	__u32 identity, matched;

	if (tag != POL_MARK_DEFER && tag != POL_MARK_OPEN)
		return -1;
	skb->mark = mark & ~(0xFFFF0000 | POL_MARK_MASK);
	if (ct_lookup(p, POL_DIR_EGRESS, now) != CT_NEW)
		return count(POL_ALLOWED_ESTABLISHED, POL_DIR_EGRESS, TC_ACT_UNSPEC);
	if (tag == POL_MARK_OPEN) {
		ct_create(p, POL_DIR_EGRESS, ep_id, now);
		return count(POL_ALLOWED_NOT_ENFORCED, POL_DIR_EGRESS, TC_ACT_UNSPEC);
	}
	/* The sender's identity is not at hand here (only its endpoint id): 0, the agent knows it by the address. */
	identity = identity_of(p->t.daddr);
	if (rule_allows(ep_id, POL_DIR_EGRESS, p->t.daddr, identity, p, &matched)) {
		ct_create(p, POL_DIR_EGRESS, ep_id, now);
		ev_verdict(skb, obs, p, ep_id, 0, POL_DIR_EGRESS, matched, POL_DEFERRED_ALLOWED, 1);
		return count(POL_DEFERRED_ALLOWED, POL_DIR_EGRESS, TC_ACT_UNSPEC);
	}
	ev_verdict(skb, obs, p, ep_id, 0, POL_DIR_EGRESS, matched, POL_DEFERRED_DROPPED, 0);
	return count(POL_DEFERRED_DROPPED, POL_DIR_EGRESS, TC_ACT_SHOT);
}

/*
 * A packet that is not IPv4: ARP passes (the pod needs its neighbours); anything else (IPv6, which the pod's kernel
 * speaks on its own link-local addresses, other L3 protocols) passes only where the endpoint does not enforce.
 */
static __always_inline int not_ipv4(struct __sk_buff *skb, const struct pol_endpoint *ep, __u32 enforce_flag, __u8 obs)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u8 dir = enforce_flag == POL_EP_ENFORCE_EGRESS ? POL_DIR_EGRESS : POL_DIR_INGRESS;

	if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_ARP))
		return count(POL_PASS_NOT_IPV4, dir, TC_ACT_UNSPEC);
	if (ep && (ep->flags & enforce_flag)) {
		struct pol_pkt none = {};

		ev_drop(skb, obs, LOOM_DROP_UNSUPPORTED_L3, &none, ep->ep_id, ep->identity, dir, 0);
		return count(POL_DROPPED_NOT_IPV4, dir, TC_ACT_SHOT);
	}
	return count(POL_PASS_NOT_IPV4, dir, TC_ACT_UNSPEC);
}

/* A destination kube-proxy will translate: in the service range and not a known address. */
static __always_inline int is_service(const struct pol_cfg *cfg, __be32 daddr)
{
	struct pol_lpm_ip k = { .prefixlen = 32, .ip = daddr };

	return cfg->svc_mask && (daddr & cfg->svc_mask) == cfg->svc_net && !bpf_map_lookup_elem(&pol_ipcache, &k);
}

/* The observation point of a node device: pol_ifaces says whether it is a tunnel device or the underlay. */
static __always_inline __u8 node_obs(struct __sk_buff *skb, int egress)
{
	__u32 ifindex = skb->ifindex;
	__u32 *role = bpf_map_lookup_elem(&pol_ifaces, &ifindex);

	if (role && *role == POL_IFACE_OVERLAY)
		return egress ? LOOM_OBS_TO_OVERLAY : LOOM_OBS_FROM_OVERLAY;
	return egress ? LOOM_OBS_TO_NETWORK : LOOM_OBS_FROM_NETWORK;
}

/* Whether p is a tunnel's outer packet (UDP to a VXLAN port of the node): its flow is traced inside, at the overlay. */
static __always_inline int tunnel_outer(const struct pol_pkt *p)
{
	__u32 zero = 0;
	struct pol_cfg *cfg;

	if (p->t.proto != IPPROTO_UDP)
		return 0;
	cfg = bpf_map_lookup_elem(&pol_config, &zero);
	if (!cfg)
		return 0;
	for (int i = 0; i < POL_TUNNEL_PORTS; i++)
		if (cfg->tunnel_ports[i] && cfg->tunnel_ports[i] == p->t.dport)
			return 1;
	return 0;
}

/* A trace of an IPv4 packet on a node device (nothing when events are off: one array lookup). */
static __always_inline void node_trace(struct __sk_buff *skb, int egress)
{
	struct pol_pkt p = {};
	__u8 obs;

	if (!loom_ev_on() || parse(skb, &p) != PARSE_OK)
		return;
	obs = node_obs(skb, egress);
	if ((obs == LOOM_OBS_TO_NETWORK || obs == LOOM_OBS_FROM_NETWORK) && tunnel_outer(&p))
		return;
	/* Leaving the node, a reply answers a connection a local pod accepted (ingress); arriving, one a local pod opened. */
	ct_mark_reply(&p, egress ? POL_DIR_INGRESS : POL_DIR_EGRESS, bpf_ktime_get_ns());
	ev_trace(skb, obs, &p, 0, egress ? POL_DIR_EGRESS : POL_DIR_INGRESS);
}

SEC("tc")
int pol_from_pod(struct __sk_buff *skb)
{
	struct pol_cfg *cfg = pol_enabled();
	struct pol_pkt p = {};
	struct pol_endpoint *ep;
	__u32 ifindex = skb->ifindex;
	__u64 now;
	int rc, verdict;

	ep = bpf_map_lookup_elem(&pol_endpoints, &ifindex);
	if (!ep)
		return count(POL_PASS_UNMANAGED, POL_DIR_EGRESS, TC_ACT_UNSPEC);
	rc = parse(skb, &p);
	if (rc == PARSE_INVALID) {
		ev_drop(skb, LOOM_OBS_FROM_ENDPOINT, LOOM_DROP_INVALID_PACKET, &p, ep->ep_id, ep->identity, POL_DIR_EGRESS, 0);
		return count(POL_DROPPED_NOT_IPV4, POL_DIR_EGRESS, TC_ACT_SHOT);
	}
	if (rc == PARSE_NOT_IPV4)
		return cfg ? not_ipv4(skb, ep, POL_EP_ENFORCE_EGRESS, LOOM_OBS_FROM_ENDPOINT) : count(POL_PASS_DISABLED, POL_DIR_EGRESS, TC_ACT_UNSPEC);
	/* Identities are addresses: a pod may only speak for its own (Cilium's invalid-source drop), whatever the mode, since
	 * the nodes that judge its packets trust the source. */
	if (ep->ip && p.t.saddr != ep->ip) {
		ev_drop(skb, LOOM_OBS_FROM_ENDPOINT, LOOM_DROP_INVALID_SOURCE, &p, ep->ep_id, ep->identity, POL_DIR_EGRESS, 0);
		return count(POL_DROPPED_SPOOFED, POL_DIR_EGRESS, TC_ACT_SHOT);
	}
	if (!cfg) {
		verdict = count(POL_PASS_DISABLED, POL_DIR_EGRESS, TC_ACT_UNSPEC);
	} else if (rc == PARSE_FRAGMENT) {
		verdict = count(POL_PASS_FRAGMENT, POL_DIR_EGRESS, TC_ACT_UNSPEC);
	} else {
		now = bpf_ktime_get_ns();
		if (is_service(cfg, p.t.daddr)) {
			if (ct_lookup(&p, POL_DIR_EGRESS, now) == CT_NEW)
				ct_create(&p, POL_DIR_EGRESS, ep->ep_id, now);
			skb->mark = (skb->mark & ~(0xFFFF0000 | POL_MARK_MASK)) | (ep->ep_id << 16) |
				    (ep->flags & POL_EP_ENFORCE_EGRESS ? POL_MARK_DEFER : POL_MARK_OPEN);
			verdict = count(POL_DEFERRED, POL_DIR_EGRESS, TC_ACT_UNSPEC);
		} else {
			verdict = enforce(skb, LOOM_OBS_FROM_ENDPOINT, &p, ep, POL_DIR_EGRESS, cfg, now);
		}
	}
	if (verdict != TC_ACT_SHOT)
		ev_trace(skb, LOOM_OBS_FROM_ENDPOINT, &p, ep, POL_DIR_EGRESS);
	return verdict;
}

SEC("tc")
int pol_to_pod(struct __sk_buff *skb)
{
	struct pol_cfg *cfg = pol_enabled();
	struct pol_pkt p = {};
	struct pol_endpoint *ep;
	__u32 ifindex = skb->ifindex;
	__u64 now;
	int rc, verdict;

	if (!cfg) {
		/* Enforcement off: only the trace, if events are on. */
		if (loom_ev_on() && (ep = bpf_map_lookup_elem(&pol_endpoints, &ifindex)) && parse(skb, &p) == PARSE_OK)
			ev_trace(skb, LOOM_OBS_TO_ENDPOINT, &p, ep, POL_DIR_INGRESS);
		return count(POL_PASS_DISABLED, POL_DIR_INGRESS, TC_ACT_UNSPEC);
	}
	ep = bpf_map_lookup_elem(&pol_endpoints, &ifindex);
	rc = parse(skb, &p);
	if (rc == PARSE_INVALID) {
		ev_drop(skb, LOOM_OBS_TO_ENDPOINT, LOOM_DROP_INVALID_PACKET, &p, ep ? ep->ep_id : 0, ep ? ep->identity : 0,
			POL_DIR_INGRESS, 0);
		return count(POL_DROPPED_NOT_IPV4, POL_DIR_INGRESS, TC_ACT_SHOT);
	}
	if (rc == PARSE_NOT_IPV4)
		return not_ipv4(skb, ep, POL_EP_ENFORCE_INGRESS, LOOM_OBS_TO_ENDPOINT);
	if (rc == PARSE_FRAGMENT) {
		verdict = count(POL_PASS_FRAGMENT, POL_DIR_INGRESS, TC_ACT_UNSPEC);
	} else {
		now = bpf_ktime_get_ns();
		/* The sender's deferred egress verdict first (a local backend), then this endpoint's ingress. */
		if (deferred(skb, &p, now, LOOM_OBS_TO_ENDPOINT) == TC_ACT_SHOT)
			return TC_ACT_SHOT;
		if (!ep)
			return count(POL_PASS_UNMANAGED, POL_DIR_INGRESS, TC_ACT_UNSPEC);
		/*
		 * lb4's hairpin: the pod reaching itself through its own Service, its source replaced by the service loopback
		 * (LOOM_SVC_LOOPBACK). Allowed as traffic from the node is: kube-proxy masquerades the same packet to the node.
		 */
		if (p.t.saddr == LOOM_SVC_LOOPBACK)
			verdict = count(POL_ALLOWED_HOST, POL_DIR_INGRESS, TC_ACT_UNSPEC);
		else
			verdict = enforce(skb, LOOM_OBS_TO_ENDPOINT, &p, ep, POL_DIR_INGRESS, cfg, now);
	}
	if (ep && verdict != TC_ACT_SHOT)
		ev_trace(skb, LOOM_OBS_TO_ENDPOINT, &p, ep, POL_DIR_INGRESS);
	return verdict;
}

SEC("tc")
int pol_to_node(struct __sk_buff *skb)
{
	struct pol_pkt p = {};
	__u8 obs;
	int rc;

	if ((skb->mark & POL_MARK_MASK) != POL_MARK_DEFER && (skb->mark & POL_MARK_MASK) != POL_MARK_OPEN) {
		node_trace(skb, 1);
		return TC_ACT_UNSPEC;
	}
	if (!pol_enabled())
		return count(POL_PASS_DISABLED, POL_DIR_EGRESS, TC_ACT_UNSPEC);
	rc = parse(skb, &p);
	if (rc == PARSE_INVALID) {
		/* marked by a pod, unreadable now: its verdict cannot be taken */
		if (loom_ev_on())
			ev_drop(skb, node_obs(skb, 1), LOOM_DROP_INVALID_PACKET, &p, skb->mark >> 16, 0, POL_DIR_EGRESS, 0);
		return count(POL_DROPPED_NOT_IPV4, POL_DIR_EGRESS, TC_ACT_SHOT);
	}
	if (rc != PARSE_OK)
		return TC_ACT_UNSPEC;
	obs = loom_ev_on() ? node_obs(skb, 1) : LOOM_OBS_UNKNOWN;
	rc = deferred(skb, &p, bpf_ktime_get_ns(), obs);
	if (rc == TC_ACT_SHOT)
		return TC_ACT_SHOT;
	ev_trace(skb, obs, &p, 0, POL_DIR_EGRESS);
	return TC_ACT_UNSPEC;
}

/* tc ingress of the tunnel device / underlay: only the from-overlay / from-network trace; decides nothing. */
SEC("tc")
int pol_from_node(struct __sk_buff *skb)
{
	node_trace(skb, 0);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
