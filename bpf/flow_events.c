// SPDX-License-Identifier: GPL-2.0
/*
 * Only the shared flow-event maps (flow_events.h): the agent loads this object with its pins in the node's events
 * directory so that the ring, the lost counter and the config exist before any program that writes to them.
 */
#include "loom_common.h"
#include "flow_events.h"

char LICENSE[] SEC("license") = "GPL";
