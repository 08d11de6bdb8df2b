// SPDX-License-Identifier: GPL-2.0
/*
 * Deliberately rejected by the verifier (reads packet data without checking data_end), so tests can
 * check that a failed load reports the verifier log. Never loaded by the agent.
 */
#include "loom_common.h"

SEC("tc")
int reject_unchecked_read(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;

	return *(__u8 *)data;
}

char LICENSE[] SEC("license") = "GPL";
