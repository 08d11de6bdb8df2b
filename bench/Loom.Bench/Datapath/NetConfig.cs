namespace Loom.Bench.Datapath;

/// <summary>How the pods' packets should travel in a configuration; checked on the running lab before measuring.</summary>
internal enum Plumbing
{
    Bridge,
    Routed,
}

/// <summary>
/// One network configuration of the bench: its cluster file, the datapath the lab must show for it (so a lab that
/// silently builds something else is not measured under this name), and the goal for it.
/// </summary>
/// <param name="Key">Short name, also in the lab prefix (lbd&lt;pid&gt;-&lt;key&gt;-): no dash.</param>
/// <param name="TunnelDevice">The device the peer's block is routed through; null for native routing (via the peer's eth1).</param>
/// <param name="BpfHostRouting">hr_from_pod / hr_from_underlay attached (bpf/host_routing.c).</param>
/// <param name="MinThroughput">Goal: throughput / underlay at least this (1 and 4 streams); null: no goal.</param>
/// <param name="MaxLatency">Goal: round-trip p50 / underlay at most this; null: no goal.</param>
internal sealed record NetConfig(
    string Key,
    string Title,
    string File,
    Plumbing Plumbing,
    string? TunnelDevice,
    bool BpfHostRouting,
    double? MinThroughput,
    double? MaxLatency)
{
    public static readonly IReadOnlyList<NetConfig> All =
    [
        new("flannel", "bridge+VXLAN (flannel.yaml)", "examples/cluster/flannel.yaml", Plumbing.Bridge, "loom.1", false, 0.85, null),
        new("tunnel", "routed+VXLAN (cilium-tunnel.yaml)", "examples/cluster/cilium-tunnel.yaml", Plumbing.Routed, "loom_vxlan", false, 0.85, null),
        new("native", "routed+native legacy (bench/native-legacy.yaml)", "bench/native-legacy.yaml", Plumbing.Routed, null, false, null, null),
        new("ebpf", "routed+native+eBPF host routing (cilium.yaml)", "examples/cluster/cilium.yaml", Plumbing.Routed, null, true, 0.98, 1.05),
    ];

    public string Goal => (MinThroughput, MaxLatency) switch
    {
        ({ } t, { } l) => $"thr >= {t:0.00}x, p50 <= {l:0.00}x",
        ({ } t, null) => $"thr >= {t:0.00}x",
        _ => "-",
    };
}
