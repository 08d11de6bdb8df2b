/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Flow events: what every Loom program tells the agent about the packets it sees, through one BPF ring buffer per
 * node (the maps below are declared in each object and pinned once, in the node's shared events directory).
 *
 *   trace        a packet seen at an observation point (aggregated: see loom_ev_trace)
 *   drop         a packet dropped, with the reason (never aggregated)
 *   policy       a verdict on a new connection (allowed or denied, ingress or egress, the identity that matched)
 *   translation  a service frontend translated to a backend (orig_* hold the frontend)
 *
 * Addresses and ports are in network order, as on the wire. Mirrored by src/Loom.Core/Flows/FlowEvent.cs; the
 * numbers below are part of the agent's contract (the agent names them), change both together.
 */
#pragma once

#define LOOM_EV_TRACE 1
#define LOOM_EV_DROP 2
#define LOOM_EV_POLICY 3
#define LOOM_EV_TRANSLATION 4

/* Observation points (Hubble's names). */
#define LOOM_OBS_UNKNOWN 0
#define LOOM_OBS_FROM_ENDPOINT 1 /* tc ingress of a pod's host veth: the pod sent it */
#define LOOM_OBS_TO_ENDPOINT 2   /* tc egress of a pod's host veth: delivered to the pod */
#define LOOM_OBS_TO_STACK 3      /* handed to the node's kernel stack (routing, kube-proxy) */
#define LOOM_OBS_TO_OVERLAY 4    /* tc egress of the tunnel device */
#define LOOM_OBS_FROM_OVERLAY 5  /* tc ingress of the tunnel device */
#define LOOM_OBS_TO_NETWORK 6    /* tc egress of the underlay */
#define LOOM_OBS_FROM_NETWORK 7  /* tc ingress of the underlay */
#define LOOM_OBS_SOCKET 8        /* a socket program (connect, sendmsg): service translation at the socket */

/* Drop reasons (Cilium's numbers where one exists; names in FlowEvent.cs). */
#define LOOM_DROP_NONE 0
#define LOOM_DROP_POLICY_DENIED 133       /* "Policy denied" */
#define LOOM_DROP_INVALID_SOURCE 132      /* "Invalid source ip": spoofed */
#define LOOM_DROP_UNSUPPORTED_L3 139      /* "Unsupported L3 protocol": IPv6 to/from an enforced endpoint */
#define LOOM_DROP_INVALID_PACKET 134      /* "Invalid packet": a header that cannot be read */
#define LOOM_DROP_NO_SERVICE_BACKEND 158  /* "Service backend not found" */
#define LOOM_DROP_CT_MAP_FULL 155         /* "CT: Map insertion failed" */
#define LOOM_DROP_NAT_NO_PORT 165         /* "No mapping for NAT masquerade": no free SNAT port */
#define LOOM_DROP_UNROUTABLE 130          /* "Unknown L3 target address" / no route */
#define LOOM_DROP_POLICY_DEFERRED 181     /* "Policy denied" taken after kube-proxy's translation (deferred egress) */

/* flags */
#define LOOM_EVF_REPLY 0x01      /* the packet is a reply of a tracked connection */
#define LOOM_EVF_EGRESS 0x02     /* policy direction: egress of the endpoint (else ingress) */
#define LOOM_EVF_ALLOWED 0x04    /* policy: the verdict is allowed (else denied) */
#define LOOM_EVF_TRANSLATED 0x08 /* orig_daddr/orig_dport are set: the packet's destination was a service frontend */

struct loom_flow_event {
	__u64 ktime_ns;     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u8 type;          /* LOOM_EV_* */
	__u8 obs_point;     /* LOOM_OBS_* */
	__u8 reason;        /* LOOM_DROP_* for drops; for policy, the pol_stats reason */
	__u8 flags;         /* LOOM_EVF_* */
	__u8 proto;         /* IPPROTO_*: 6, 17, 1, 132 */
	__u8 tcp_flags;     /* the TCP header's flag byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10) */
	__u16 ep_id;        /* the local endpoint's policy id (0: none) */
	__u32 ifindex;      /* the device the program runs on (0 for socket programs) */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;       /* for ICMP: the echo id as in pol_ct */
	__be16 dport;
	__be32 orig_daddr;  /* LOOM_EVF_TRANSLATED: the frontend */
	__be16 orig_dport;
	__u16 pad;
	__u32 src_identity; /* 0: unknown (the agent looks the address up) */
	__u32 dst_identity;
	__u32 len;          /* skb->len, 0 for socket programs */
	__u32 pad2;
}; /* 56 bytes */

/*
 * The maps every Loom object shares (pinned once per node in <BpfPinDir>/events; FlowEventMaps.cs): the agent creates
 * them first (flow_events.o), every object reuses the pins, so all programs write into one ring the agent reads.
 */
#define LOOM_EVC_ENABLED 1

/* Aggregation levels (Cilium's monitorAggregation numbers). */
#define LOOM_AGG_NONE 0
#define LOOM_AGG_MEDIUM 2

#define LOOM_EV_DEFAULT_INTERVAL_S 5

struct loom_ev_cfg {
	__u32 flags;       /* LOOM_EVC_*: 0 (the map's initial state) is off */
	__u32 aggregation; /* LOOM_AGG_* */
	__u32 interval_s;  /* medium: a tuple's trace again after this long (0: LOOM_EV_DEFAULT_INTERVAL_S) */
};

/* loom_ev_agg's key: one tuple at one observation point. */
struct loom_ev_agg_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 obs_point;
	__u16 pad;
};

struct loom_ev_agg_val {
	__u64 last_ns;  /* when a trace of this key was last emitted */
	__u8 seen;      /* TCP flags (SYN, FIN, RST, ACK) already reported */
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} loom_ev_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64); /* events that did not fit in the ring */
} loom_ev_lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loom_ev_cfg);
} loom_ev_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct loom_ev_agg_key);
	__type(value, struct loom_ev_agg_val);
} loom_ev_agg SEC(".maps");

/* What a program knows of a packet: its tuple as it travels, and what it has learnt about the endpoints. */
struct loom_ev_flow {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u16 ep_id;
	__u32 src_identity;
	__u32 dst_identity;
};

#define LOOM_TCP_FIN 0x01
#define LOOM_TCP_SYN 0x02
#define LOOM_TCP_RST 0x04
#define LOOM_TCP_ACK 0x10

/* The config when events are on, else NULL: the one lookup a program pays with events off. */
static __always_inline struct loom_ev_cfg *loom_ev_on(void)
{
	__u32 zero = 0;
	struct loom_ev_cfg *cfg = bpf_map_lookup_elem(&loom_ev_config, &zero);

	return cfg && (cfg->flags & LOOM_EVC_ENABLED) ? cfg : 0;
}

static __always_inline void loom_ev_emit(__u8 type, __u8 obs, __u8 reason, __u8 flags, const struct loom_ev_flow *f,
					 __u32 ifindex, __u32 len, __be32 orig_daddr, __be16 orig_dport)
{
	struct loom_flow_event *e = bpf_ringbuf_reserve(&loom_ev_ring, sizeof(*e), 0);
	__u32 zero = 0;

	if (!e) {
		__u64 *lost = bpf_map_lookup_elem(&loom_ev_lost, &zero);

		/* atomic: a socket program can be interrupted by tc on the same CPU */
		if (lost)
			__sync_fetch_and_add(lost, 1);
		return;
	}
	e->ktime_ns = bpf_ktime_get_ns();
	e->type = type;
	e->obs_point = obs;
	e->reason = reason;
	e->flags = flags;
	e->proto = f->proto;
	e->tcp_flags = f->tcp_flags;
	e->ep_id = f->ep_id;
	e->ifindex = ifindex;
	e->saddr = f->saddr;
	e->daddr = f->daddr;
	e->sport = f->sport;
	e->dport = f->dport;
	e->orig_daddr = orig_daddr;
	e->orig_dport = orig_dport;
	e->pad = 0;
	e->src_identity = f->src_identity;
	e->dst_identity = f->dst_identity;
	e->len = len;
	e->pad2 = 0;
	/* Waking the reader costs more than writing the event: only once an eighth of the ring waits (the reader's poll
	 * has a timeout and then consumes what is there anyway). */
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&loom_ev_ring, BPF_RB_AVAIL_DATA) >=
				      bpf_ringbuf_query(&loom_ev_ring, BPF_RB_RING_SIZE) / 8
			      ? BPF_RB_FORCE_WAKEUP
			      : BPF_RB_NO_WAKEUP);
}

/*
 * Medium aggregation: whether this packet is worth a trace. The first packet of a {tuple, obs point}, a TCP flag among
 * SYN, FIN, RST and ACK not reported yet for it (a fresh SYN after FIN or RST starts over: a new connection on the same
 * tuple), and again once the interval has passed since the last report.
 */
static __always_inline int loom_ev_report(const struct loom_ev_cfg *cfg, __u8 obs, const struct loom_ev_flow *f)
{
	struct loom_ev_agg_key k = {
		.saddr = f->saddr,
		.daddr = f->daddr,
		.sport = f->sport,
		.dport = f->dport,
		.proto = f->proto,
		.obs_point = obs,
	};
	__u8 flags = f->proto == 6 ? f->tcp_flags & (LOOM_TCP_SYN | LOOM_TCP_FIN | LOOM_TCP_RST | LOOM_TCP_ACK) : 0;
	__u64 interval = (cfg->interval_s ? cfg->interval_s : LOOM_EV_DEFAULT_INTERVAL_S) * 1000000000ULL;
	__u64 now = bpf_ktime_get_ns();
	struct loom_ev_agg_val *v = bpf_map_lookup_elem(&loom_ev_agg, &k);

	if (!v) {
		struct loom_ev_agg_val nv = { .last_ns = now, .seen = flags };

		bpf_map_update_elem(&loom_ev_agg, &k, &nv, BPF_ANY);
		return 1;
	}
	/* any SYN: the reply key's new SYN-ACK carries ACK too */
	if ((flags & LOOM_TCP_SYN) && (v->seen & (LOOM_TCP_FIN | LOOM_TCP_RST)))
		v->seen = 0;
	if ((flags & ~v->seen) || now - v->last_ns >= interval) {
		v->seen |= flags;
		v->last_ns = now;
		return 1;
	}
	return 0;
}

/* A packet seen at obs (LOOM_EVF_REPLY in flags for a reply), aggregated as the config says. */
static __always_inline void loom_ev_trace(struct __sk_buff *skb, __u8 obs, __u8 flags, const struct loom_ev_flow *f)
{
	struct loom_ev_cfg *cfg = loom_ev_on();

	if (!cfg)
		return;
	if (cfg->aggregation != LOOM_AGG_NONE && !loom_ev_report(cfg, obs, f))
		return;
	loom_ev_emit(LOOM_EV_TRACE, obs, 0, flags, f, skb->ifindex, skb->len, 0, 0);
}

/* A dropped packet, never aggregated. */
static __always_inline void loom_ev_drop(struct __sk_buff *skb, __u8 obs, __u8 reason, __u8 flags, const struct loom_ev_flow *f)
{
	if (loom_ev_on())
		loom_ev_emit(LOOM_EV_DROP, obs, reason, flags, f, skb->ifindex, skb->len, 0, 0);
}

/* A verdict on a new connection (the caller emits it only there): reason is the pol_stats index that decided it. */
static __always_inline void loom_ev_policy(struct __sk_buff *skb, __u8 obs, __u8 reason, __u8 flags, const struct loom_ev_flow *f)
{
	if (loom_ev_on())
		loom_ev_emit(LOOM_EV_POLICY, obs, reason, flags, f, skb->ifindex, skb->len, 0, 0);
}

/*
 * A service frontend translated to a backend (f holds the backend, orig_* the frontend); ifindex and len are 0 for
 * socket programs. Not aggregated: callers emit it once per decision (a new connection's first packet, a connect, a
 * UDP socket's first datagram to a backend).
 */
static __always_inline void loom_ev_translation(__u8 obs, __u32 ifindex, __u32 len, const struct loom_ev_flow *f,
						__be32 orig_daddr, __be16 orig_dport)
{
	if (loom_ev_on())
		loom_ev_emit(LOOM_EV_TRANSLATION, obs, 0, LOOM_EVF_TRANSLATED, f, ifindex, len, orig_daddr, orig_dport);
}

/* A drop outside a tc program (a socket program's refusal: ifindex and len 0). */
static __always_inline void loom_ev_drop_socket(__u8 reason, const struct loom_ev_flow *f)
{
	if (loom_ev_on())
		loom_ev_emit(LOOM_EV_DROP, LOOM_OBS_SOCKET, reason, 0, f, 0, 0, 0, 0);
}
