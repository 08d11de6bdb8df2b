namespace Loom.Datapath.Routing;

/// <summary>Where eBPF host routing keeps its state and which tc slot its programs occupy.</summary>
public sealed record HostRoutingOptions
{
    public const string DefaultPinDirectory = "/sys/fs/bpf/loom/host_routing";

    /// <summary>bpffs directory for the maps (hr_ifaces, hr_stats); a restart over it adopts them.</summary>
    public string PinDirectory { get; init; } = DefaultPinDirectory;

    /// <summary>The node's shared flow-event pins (FlowEventMaps.DirectoryFor(BpfPinDir)); null: host_routing.o's events go nowhere.</summary>
    public string? EventsDirectory { get; init; }

    /// <summary>Directory holding host_routing.o; null: as the eBPF service backend finds lb4.o.</summary>
    public string? ObjectDirectory { get; init; }

    /// <summary>
    /// tc priority on the pods' veths and the underlay (ingress). After the service load balancer (0x4c), which must
    /// hand packets on (TC_ACT_UNSPEC) for host routing to see them, and after masquerade's de-NAT (0x48) on the underlay.
    /// </summary>
    public uint TcPriority { get; init; } = 0x50;

    public uint TcHandle { get; init; } = 0x4852;

    /// <summary>How packets for a local pod are handed over; see <see cref="PodDelivery"/>.</summary>
    public PodDelivery PodDelivery { get; init; } = PodDelivery.Peer;
}

/// <summary>How host routing hands a packet to a pod on this node.</summary>
public enum PodDelivery
{
    /// <summary>
    /// bpf_redirect_peer straight into the pod's namespace (Cilium's way, the fastest): the host veth's egress hook does
    /// not run, so nothing attached there (the eBPF service backend's reverse NAT) sees these packets.
    /// </summary>
    Peer,

    /// <summary>bpf_redirect_neigh out of the host veth: its egress programs run. For nodes with such programs.</summary>
    Egress,
}
