using Loom.Core.Selection;

namespace Loom.Core.Model;

/// <summary>
/// A per-node override of the cluster config (the role of CiliumNodeConfig in the scenario's migration): the
/// agent of <see cref="Node"/> watches it and switches live, e.g. from the iptables to the nftables service backend.
/// With a <see cref="NodeSelector"/> it applies to every node whose labels match instead, and <see cref="Node"/> is
/// only its name (as a CiliumNodeConfig selects nodes by <c>io.cilium.migration/cilium-default=true</c>).
/// </summary>
public sealed record NodeConfig
{
    /// <summary>The node it applies to, or the object's name when <see cref="NodeSelector"/> is set; the store key.</summary>
    public required string Node { get; init; }

    /// <summary>Overrides <see cref="ClusterConfig.ServiceBackend"/> on this node; null: the cluster's.</summary>
    public ServiceProxyMode? ServiceBackend { get; init; }

    /// <summary>Overrides <see cref="ClusterConfig.PolicyEnforcementMode"/> on this node; null: the cluster's.</summary>
    public PolicyEnforcementMode? PolicyEnforcementMode { get; init; }

    /// <summary>The node's primary network (the one its new pods join); null: the cluster's default.</summary>
    public string? Network { get; init; }

    /// <summary>The nodes this config applies to, by label; null: the node named <see cref="Node"/>.</summary>
    public LabelSelector? NodeSelector { get; init; }
}
