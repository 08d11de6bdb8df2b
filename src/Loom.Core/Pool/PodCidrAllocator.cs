using System.Net;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Core.Pool;

public static class PodCidrAllocator
{
    public static IPodCidrAllocator Create(IStore store, ClusterConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Create(store, config.PodCidrPools, config.NodeMaskSize);
    }

    /// <param name="pools">Carved in order: the second pool is used only once the first is full.</param>
    /// <param name="nodeMaskSize">Prefix length of each node's CIDR, e.g. 24 for IPv4 pools.</param>
    public static IPodCidrAllocator Create(IStore store, IReadOnlyList<IPNetwork> pools, int nodeMaskSize)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(pools);
        if (pools.Count == 0)
        {
            throw new ArgumentException("at least one pod CIDR pool is required", nameof(pools));
        }

        foreach (var pool in pools)
        {
            var bits = pool.BaseAddress.GetAddressBytes().Length * 8;
            if (nodeMaskSize < pool.PrefixLength || nodeMaskSize > bits)
            {
                throw new ArgumentOutOfRangeException(nameof(nodeMaskSize), nodeMaskSize,
                    $"node mask /{nodeMaskSize} does not fit pool {pool} (must be between /{pool.PrefixLength} and /{bits})");
            }
        }

        return new ClusterPoolAllocator(store, pools, nodeMaskSize);
    }
}
