namespace Loom.Datapath.Services.Ebpf;

/// <summary>Where the eBPF service backend keeps its state and what it attaches to.</summary>
public sealed record EbpfServiceOptions
{
    /// <summary>The agent's default pin directory (per node: one agent per node, one bpffs per host or netns run).</summary>
    public const string DefaultPinDirectory = "/sys/fs/bpf/loom/lb4";

    /// <summary>
    /// bpffs directory the lb4 maps (and the attached cgroup programs) are pinned in. A restarted backend over the same
    /// directory adopts the maps with their contents (services, backends, connection tracking, affinity).
    /// </summary>
    public string PinDirectory { get; init; } = DefaultPinDirectory;

    /// <summary>
    /// The node's shared flow-event pins (FlowEventMaps.DirectoryFor(BpfPinDir)) the programs' translation and drop events
    /// go to; null: a ring of lb4's own that nobody reads, off.
    /// </summary>
    public string? EventsDirectory { get; init; }

    /// <summary>
    /// Directory holding <c>lb4.o</c>. Null: <c>$LOOM_BPF_DIR</c>, else <c>bpf/</c> next to the executable, else the
    /// nearest <c>out/bpf</c> above the working directory.
    /// </summary>
    public string? ObjectDirectory { get; init; }

    /// <summary>
    /// cgroup v2 directory to attach the socket-level LB (connect4 / sendmsg4 / recvmsg4) to, e.g. the pods' parent
    /// cgroup. Null: no socket-level LB (per-packet tc NAT only). Never give the root cgroup unless you mean the host.
    /// </summary>
    public string? CgroupPath { get; init; }

    /// <summary>
    /// Host-side veth ifindexes (in the namespace <see cref="IServiceBackend.Sync"/> is called in) that every sync makes sure
    /// carry the tc programs: a full sync asks every time, others only after <see cref="EbpfServiceBackend.InterfacesChanged"/>.
    /// Optional: the agent can call <see cref="EbpfServiceBackend.Attach"/> / <c>Detach</c> per endpoint.
    /// </summary>
    public Func<IEnumerable<int>>? Interfaces { get; init; }

    /// <summary>
    /// The node's underlay device (its name in the namespace syncs run in), where node-port and external-IP traffic from
    /// outside the node arrives: its tc ingress translates it, its egress reverse-translates the replies. Null: node ports
    /// are served only to the node's pods and (socket LB) processes.
    /// </summary>
    public string? NodePortInterface { get; init; }

    /// <summary>tc filter priority and handle of the node-port programs on <see cref="NodePortInterface"/>: before masquerade's (0x48).</summary>
    public uint NodePortTcPriority { get; init; } = 0x46;

    public uint NodePortTcHandle { get; init; } = 0x4c4e;

    /// <summary>
    /// The node-wide proxy options: node ports are served on <see cref="ServiceProxyOptions.NodeIps"/> inside
    /// <see cref="ServiceProxyOptions.NodePortAddresses"/> (all of them if empty); the first node IP is the source of
    /// node-port traffic sent on to a backend on another node.
    /// </summary>
    public ServiceProxyOptions Proxy { get; init; } = new();

    /// <summary>
    /// How long syncs trust what they wrote before one re-reads the maps and repairs drift (entries someone changed behind
    /// the backend's back). A failed sync makes the next one full anyway.
    /// </summary>
    public TimeSpan FullResyncInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>tc filter priority and handle the programs occupy on each veth (both directions).</summary>
    public uint TcPriority { get; init; } = 0x4c;

    public uint TcHandle { get; init; } = 0x4c4f;

    /// <summary>
    /// How a new flow's backend is chosen (on the tc path on its first packet, on the socket path at connect / sendmsg).
    /// Session affinity, where set, takes precedence either way.
    /// </summary>
    public LbAlgorithm Algorithm { get; init; } = LbAlgorithm.Random;

    /// <summary>
    /// Slots M of each service's Maglev lookup table (with <see cref="LbAlgorithm.Maglev"/>): a prime between
    /// <see cref="Ebpf.Maglev.MinTableSize"/> and <see cref="Ebpf.Maglev.MaxTableSize"/>, well above the number of backends
    /// per service (≥ 100 N keeps disruption on backend changes near 1/N). Default 16381.
    /// </summary>
    public int MaglevTableSize { get; init; } = Ebpf.Maglev.DefaultTableSize;

    /// <summary>Capacities of the lb4 maps (validated when the backend is created; applied when lb4.o is loaded).</summary>
    public LbMapSizes MapSizes { get; init; } = new();

    /// <summary>lb4_ct's lifetimes (Cilium's by default) and how often the GC pass runs (<see cref="LbConntrackLifetimes"/>).</summary>
    public LbConntrackLifetimes ConnTrack { get; init; } = new();
}

/// <summary>Backend selection of the eBPF service load balancer.</summary>
public enum LbAlgorithm
{
    /// <summary>A random backend per new flow.</summary>
    Random,

    /// <summary>
    /// Maglev consistent hashing: the flow's hash picks a slot of the service's lookup table, so the same flow tuple gets
    /// the same backend (on any node, after a restart or after its connection-tracking entry expired), and a backend
    /// change moves only about 1/N of the flows.
    /// </summary>
    Maglev,
}
