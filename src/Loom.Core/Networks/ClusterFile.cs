using Loom.Core.Model;

namespace Loom.Core.Networks;

/// <summary>
/// A cluster file (<c>loom lab up --config FILE</c>): the networks, and the cluster settings with the default
/// network's values mirrored into <see cref="ClusterConfig"/>'s single-network fields, which the agent runs today.
/// </summary>
public sealed record ClusterFile(IReadOnlyList<Network> Networks, ClusterConfig Cluster)
{
    /// <summary>Today's cluster: the Flannel network alone (what examples/cluster/flannel.yaml says).</summary>
    public static ClusterFile Default() => new([Network.Flannel()], new ClusterConfig());

    /// <summary><paramref name="settings"/> with the pool, mask, routing, tunnel and masquerade of <paramref name="network"/>, now its default.</summary>
    public static ClusterConfig WithDefaultNetwork(ClusterConfig settings, Network network)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(network);
        return settings with
        {
            DefaultNetwork = network.Name,
            PodCidrPools = [network.PodCidr],
            NodeMaskSize = network.NodeMaskSize,
            Routing = network.RoutingMode,
            Tunnel = network.Tunnel ?? new TunnelConfig(),
            IpMasq = network.Masquerade != Masquerade.None,
        };
    }
}
