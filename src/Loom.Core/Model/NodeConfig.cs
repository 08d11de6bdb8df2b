namespace Loom.Core.Model;

/// <summary>
/// A per-node override of the cluster config (the role of CiliumNodeConfig in the scenario's migration): the
/// agent of <see cref="Node"/> watches it and switches live, e.g. from the iptables to the nftables service backend.
/// </summary>
public sealed record NodeConfig
{
    public required string Node { get; init; }

    /// <summary>Overrides <see cref="ClusterConfig.ServiceBackend"/> on this node; null: the cluster's.</summary>
    public ServiceProxyMode? ServiceBackend { get; init; }
}
