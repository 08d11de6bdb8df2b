namespace Loom.Datapath.Policy;

/// <summary>Where the eBPF network policy keeps its maps and which tc slot its programs occupy.</summary>
public sealed record PolicyDatapathOptions
{
    public const string DefaultPinDirectory = "/sys/fs/bpf/loom/policy";

    /// <summary>bpffs directory for the maps; a restart over it adopts them (and the connections they track).</summary>
    public string PinDirectory { get; init; } = DefaultPinDirectory;

    /// <summary>
    /// The node's shared flow-event pins (FlowEventMaps.DirectoryFor(BpfPinDir)); null: the programs' events go to a ring
    /// of their own that nobody reads, off (their config is never written).
    /// </summary>
    public string? EventsDirectory { get; init; }

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

    /// <summary>The underlay: pol_to_node on its egress (deferred service verdicts, to-network), pol_from_node on its ingress (from-network).</summary>
    Node = 2,

    /// <summary>A tunnel device: as <see cref="Node"/>, its flow events at to-overlay / from-overlay.</summary>
    Overlay = 3,
}
