using Loom.Core.Policy;

namespace Loom.Datapath.Policy;

/// <summary>Why a policy program passed or dropped a packet (the indexes of pol_stats, POL_* in policy.c).</summary>
public enum PolicyReason
{
    /// <summary>A new flow a rule allows.</summary>
    AllowedByRule = 0,

    /// <summary>A packet of a flow allowed before (its own connection-table entry).</summary>
    AllowedEstablished = 1,

    /// <summary>A reply of a flow allowed the other way.</summary>
    AllowedReply = 2,

    /// <summary>The endpoint does not enforce this direction (the flow is still recorded).</summary>
    AllowedNotEnforced = 3,

    /// <summary>From the node itself to a pod, with allow-host on.</summary>
    AllowedHost = 4,

    DroppedIngress = 5,

    DroppedEgress = 6,

    PassedNotIpv4 = 7,

    /// <summary>On a device without an endpoint entry.</summary>
    PassedUnmanaged = 8,

    /// <summary>Policy is off (pol_config).</summary>
    PassedDisabled = 9,

    /// <summary>To a service address kube-proxy translates later: marked, judged after the DNAT.</summary>
    Deferred = 10,

    /// <summary>A deferred packet the sender's egress rules allow for its real destination.</summary>
    DeferredAllowed = 11,

    /// <summary>A deferred packet the sender's egress rules deny for its real destination.</summary>
    DeferredDropped = 12,

    /// <summary>A non-first IPv4 fragment (no ports to judge).</summary>
    PassedFragment = 13,

    /// <summary>An ICMP error (unreachable, time exceeded, parameter problem) about a tracked flow.</summary>
    AllowedRelated = 14,

    /// <summary>From a pod with a source address that is not its own (a forged identity).</summary>
    DroppedSpoofed = 15,

    /// <summary>IPv6 or another L3 protocol to or from an endpoint enforcing that direction (ARP passes).</summary>
    DroppedNotIpv4 = 16,
}

/// <summary>What the maps hold for one endpoint, read back (for <c>loom explain</c>).</summary>
public sealed record PolicyEndpointEntries(IReadOnlyList<PolicyRule> Rules, IReadOnlyList<PolicyCidr> Cidrs);
