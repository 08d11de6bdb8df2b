using System.Net;
using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>
/// One pod network of the cluster, with Cilium's and Flannel's own setting names: a pool every node takes a block
/// of, how pods attach (plumbing), how blocks reach other nodes (tunnel or native routes), who forwards and who
/// masquerades. Every node programs every network; which one its new pods join is its primary network
/// (<see cref="Networks.PrimaryNetwork"/>). Defaults are today's Flannel-style network.
/// </summary>
public sealed record Network
{
    /// <summary>Flannel's and kubeadm's usual pod network: the network a cluster has when nothing says otherwise.</summary>
    public const string FlannelName = "flannel";

    public required string Name { get; init; }

    /// <summary>The cluster pool (Cilium's <c>clusterPoolIPv4PodCIDRList</c>, Flannel's <c>Network</c>).</summary>
    [JsonPropertyName("podCIDR")]
    public IPNetwork PodCidr { get; set; }

    /// <summary>Prefix length of each node's block (Cilium's <c>clusterPoolIPv4MaskSize</c>, Flannel's <c>SubnetLen</c>).</summary>
    public int NodeMaskSize { get; set; } = 24;

    public Plumbing Plumbing { get; set; } = Plumbing.Bridge;

    public RoutingMode RoutingMode { get; set; } = RoutingMode.Tunnel;

    /// <summary>The overlay of a tunnel network; null for a native one.</summary>
    public TunnelConfig? Tunnel { get; set; }

    /// <summary>Native routing: a route to each peer's block via the peer's underlay IP.</summary>
    public bool AutoDirectNodeRoutes { get; set; }

    /// <summary>Destinations reached without masquerade (Cilium's <c>ipv4NativeRoutingCIDR</c>); null: the pool.</summary>
    [JsonPropertyName("nativeRoutingCIDR")]
    public IPNetwork? NativeRoutingCidr { get; set; }

    public HostRouting HostRouting { get; set; } = HostRouting.Legacy;

    public Masquerade Masquerade { get; set; } = Masquerade.Iptables;

    /// <summary>Today's default network: 10.244.0.0/16, /24 per node, cni0 bridge, VXLAN loom.1 port 8472 VNI 1, iptables masquerade.</summary>
    public static Network Flannel() => new()
    {
        Name = FlannelName,
        PodCidr = ClusterConfig.DefaultPodCidr,
        Tunnel = new TunnelConfig(),
    };
}
