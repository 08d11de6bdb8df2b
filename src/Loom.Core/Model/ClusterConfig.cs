using System.Net;
using Loom.Core.Services;

namespace Loom.Core.Model;

/// <summary>Cluster-wide settings every agent reads at start; the analogue of flannel's net-conf.json.</summary>
public sealed record ClusterConfig
{
    /// <summary>flannel's and kubeadm's usual pod network, the default pool and kube-proxy's default cluster CIDR here.</summary>
    public static IPNetwork DefaultPodCidr { get; } = IPNetwork.Parse("10.244.0.0/16");

    public IReadOnlyList<IPNetwork> PodCidrPools { get; set; } = [DefaultPodCidr];

    /// <summary>Prefix length of each node's pod CIDR carved from the pools.</summary>
    public int NodeMaskSize { get; set; } = 24;

    public IPNetwork ServiceCidr { get; set; } = ClusterIpAllocator.DefaultServiceCidr;

    public RoutingMode Routing { get; set; } = RoutingMode.Tunnel;

    public TunnelConfig Tunnel { get; set; } = new();

    public ServiceProxyMode ServiceBackend { get; set; } = ServiceProxyMode.Iptables;

    /// <summary>SNAT pod traffic leaving the pod CIDRs to the node's address.</summary>
    public bool IpMasq { get; set; } = true;

    /// <summary>
    /// The <see cref="Network"/> new pods join on a node no NodeConfig moves elsewhere. The fields above mirror it
    /// (a cluster file writes both) for the agent, which runs that one network until it acts on network objects.
    /// </summary>
    public string DefaultNetwork { get; set; } = Network.FlannelName;

    /// <summary>
    /// How long a node's pod CIDR blocks outlive its node object (flannel keeps a subnet lease 24 h): a node gone longer
    /// loses them to the pool, one back sooner gets the same ones. Cluster-wide, since every node must agree; 0 keeps
    /// blocks forever.
    /// </summary>
    public int PodCidrGraceSeconds { get; set; } = 24 * 3600;

    /// <summary>Stored for the policy engine; nothing enforces it yet.</summary>
    public PolicyEnforcementMode PolicyEnforcementMode { get; set; } = PolicyEnforcementMode.Default;
}
