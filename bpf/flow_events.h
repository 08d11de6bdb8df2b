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
