namespace Loom.Datapath.Policy;

/// <summary>Where the eBPF network policy keeps its maps and which tc slot its programs occupy.</summary>
public sealed record PolicyDatapathOptions
{
    public const string DefaultPinDirectory = "/sys/fs/bpf/loom/policy";

    /// <summary>bpffs directory for the maps; a restart over it adopts them (and the connections they track).</summary>
    public string PinDirectory { get; init; } = DefaultPinDirectory;

    /// <summary>Directory holding policy.o; null: as the eBPF service backend finds lb4.o.</summary>
    public string? ObjectDirectory { get; init; }

    /// <summary>
    /// tc priority on both hooks of the pods' host veths (and the egress of the tunnel device / underlay): after the
    /// service load balancer (0x4c), before host routing (0x50), whose redirects end the chain.
    /// </summary>
    public uint TcPriority { get; init; } = 0x4e;

    public uint TcHandle { get; init; } = 0x504f;
}

/// <summary>What a device is to the policy programs (pol_ifaces values).</summary>
public enum PolicyInterfaceRole : uint
{
    /// <summary>A pod's host veth: pol_from_pod on its ingress, pol_to_pod on its egress.</summary>
    Endpoint = 1,

    /// <summary>The tunnel device or the underlay: pol_to_node on its egress (deferred service verdicts).</summary>
    Node = 2,
}

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
}

/// <summary>What the maps hold for one endpoint, read back (for <c>loom explain</c>).</summary>
public sealed record PolicyEndpointEntries(IReadOnlyList<Loom.Core.Policy.PolicyRule> Rules, IReadOnlyList<Loom.Core.Policy.PolicyCidr> Cidrs);
