using Loom.Agent.Networks;
using Loom.Core.Model;

namespace Loom.Agent.Masq;

/// <summary>
/// The cluster config's default network as an <see cref="INodeNetworks"/> that never changes: what the agent ran before
/// it followed network objects (the pool holding the node's pod CIDR, iptables masquerade). For a controller not yet
/// given the network controller's view; delete once every controller takes it.
/// </summary>
internal sealed class ClusterNetwork : INodeNetworks
{
    private ClusterNetwork(NetworkOnNode network) => Current = [network];

    public IReadOnlyList<NetworkOnNode> Current { get; }

    public string? Primary => Current[0].Name;

    public event Action? Changed
    {
        add { }
        remove { }
    }

    public static ClusterNetwork Of(NodeContext node)
    {
        var pools = node.Cluster.PodCidrPools;
        var pool = pools.FirstOrDefault(p => p.PrefixLength <= node.PodCidr.PrefixLength && p.Contains(node.PodCidr.BaseAddress), pools[0]);
        var network = Network.Flannel() with { Name = node.Cluster.DefaultNetwork, PodCidr = pool };
        return new ClusterNetwork(new NetworkOnNode(network, node.PodCidr) { Ready = true });
    }
}
