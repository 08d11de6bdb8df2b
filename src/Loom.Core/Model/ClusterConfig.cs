using System.Net;

namespace Loom.Core.Model;

/// <summary>Cluster-wide settings every agent reads at start; the analogue of flannel's net-conf.json.</summary>
public sealed record ClusterConfig
{
    public IReadOnlyList<IPNetwork> PodCidrPools { get; set; } = [IPNetwork.Parse("10.244.0.0/16")];

    /// <summary>Prefix length of each node's pod CIDR carved from the pools.</summary>
    public int NodeMaskSize { get; set; } = 24;

    public IPNetwork ServiceCidr { get; set; } = IPNetwork.Parse("10.96.0.0/12");

    public RoutingMode Routing { get; set; } = RoutingMode.Tunnel;

    public TunnelConfig Tunnel { get; set; } = new();

    public ServiceBackend ServiceBackend { get; set; } = ServiceBackend.Iptables;

    /// <summary>SNAT pod traffic leaving the pod CIDRs to the node's address.</summary>
    public bool IpMasq { get; set; } = true;
}
