using System.Net;

namespace Loom.Core.Pool;

/// <summary>
/// Cluster-pool IPAM: hands each node one pod CIDR carved from the cluster's pools. Claims live in the store
/// (kind "podcidr", key = CIDR), created with compare-and-swap so two agents can never claim the same one.
/// </summary>
public interface IPodCidrAllocator
{
    /// <summary>The node's CIDR: the one it already holds (e.g. after an agent restart), else the first free one.</summary>
    /// <exception cref="PodCidrPoolExhaustedException">Every subnet of every pool is claimed.</exception>
    Task<IPNetwork> AllocateAsync(string node, CancellationToken cancellationToken = default);

    /// <summary>The node's CIDR, or null if it holds none.</summary>
    Task<IPNetwork?> GetAsync(string node, CancellationToken cancellationToken = default);

    /// <summary>Frees the node's CIDR(s); true if it held any.</summary>
    Task<bool> ReleaseAsync(string node, CancellationToken cancellationToken = default);

    /// <summary>Frees CIDRs whose node no longer exists in the store (removed, or its lease expired); returns how many.</summary>
    Task<int> ReleaseOrphansAsync(CancellationToken cancellationToken = default);

    Task<IReadOnlyList<PodCidrClaim>> ListAsync(CancellationToken cancellationToken = default);
}
