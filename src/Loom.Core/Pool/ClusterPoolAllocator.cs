using System.Net;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Core.Pool;

/// <summary>
/// Cilium-style cluster-pool allocation with flannel-style store leases: the claim record itself is the lock.
/// Allocation lists the claims, picks the first free subnet and creates its claim with expectedRevision 0;
/// losing that race just means re-listing and trying the next one.
/// </summary>
internal sealed class ClusterPoolAllocator(IStore store, IReadOnlyList<IPNetwork> pools, int maskSize) : IPodCidrAllocator
{
    // Each failed attempt means another agent claimed a subnet, so this bounds contention, not pool size.
    private const int MaxAttempts = 1000;

    public async Task<IPNetwork> AllocateAsync(string node, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var (claims, _) = await store.ListAsync(Kinds.PodCidr, cancellationToken).ConfigureAwait(false);
            if (await KeepOneAsync(node, claims, cancellationToken).ConfigureAwait(false) is { } held)
            {
                return held;
            }

            var free = FirstFree(claims.Select(c => c.Value.Cidr).ToList())
                       ?? throw new PodCidrPoolExhaustedException(
                           $"pod CIDR pool {string.Join(", ", pools)} is exhausted: every /{maskSize} is allocated ({claims.Count} claims); cannot allocate for node {node}");
            var put = await store.PutAsync(Kinds.PodCidr, new PodCidrClaim(free, node), expectedRevision: 0, cancellationToken: cancellationToken)
                .ConfigureAwait(false);
            if (!put.Succeeded)
            {
                continue;
            }

            // Another agent may have allocated for this same node meanwhile; settle on one claim and free the rest.
            var (after, _) = await store.ListAsync(Kinds.PodCidr, cancellationToken).ConfigureAwait(false);
            if (await KeepOneAsync(node, after, cancellationToken).ConfigureAwait(false) is { } kept)
            {
                return kept;
            }
        }

        throw new InvalidOperationException($"gave up allocating a pod CIDR for node {node} after {MaxAttempts} conflicting attempts");
    }

    public async Task<IPNetwork?> GetAsync(string node, CancellationToken cancellationToken = default)
    {
        var (claims, _) = await store.ListAsync(Kinds.PodCidr, cancellationToken).ConfigureAwait(false);
        return Owned(node, claims).Select(c => (IPNetwork?)c.Value.Cidr).FirstOrDefault();
    }

    public async Task<bool> ReleaseAsync(string node, CancellationToken cancellationToken = default)
    {
        var (claims, _) = await store.ListAsync(Kinds.PodCidr, cancellationToken).ConfigureAwait(false);
        var released = false;
        foreach (var claim in Owned(node, claims))
        {
            // CAS on the claim's revision: never free a CIDR someone re-claimed since we listed it.
            released |= await store.DeleteAsync(Kinds.PodCidr, claim.Key, claim.Revision, cancellationToken).ConfigureAwait(false);
        }

        return released;
    }

    public async Task<int> ReleaseOrphansAsync(CancellationToken cancellationToken = default)
    {
        var (nodes, _) = await store.ListAsync(Kinds.Node.Name, cancellationToken).ConfigureAwait(false);
        var alive = nodes.Select(n => n.Key).ToHashSet(StringComparer.Ordinal);
        var (claims, _) = await store.ListAsync(Kinds.PodCidr, cancellationToken).ConfigureAwait(false);
        var released = 0;
        foreach (var claim in claims.Where(c => !alive.Contains(c.Value.Node)))
        {
            if (await store.DeleteAsync(Kinds.PodCidr, claim.Key, claim.Revision, cancellationToken).ConfigureAwait(false))
            {
                released++;
            }
        }

        return released;
    }

    public async Task<IReadOnlyList<PodCidrClaim>> ListAsync(CancellationToken cancellationToken = default)
    {
        var (claims, _) = await store.ListAsync(Kinds.PodCidr, cancellationToken).ConfigureAwait(false);
        return claims.Select(c => c.Value).ToList();
    }

    /// <summary>
    /// The node's claims in these pools, oldest first, so every agent agrees which one a node keeps if it holds
    /// several. A node holds one claim per network, so claims in other networks' pools are none of this allocator's.
    /// </summary>
    private IEnumerable<Versioned<PodCidrClaim>> Owned(string node, IEnumerable<Versioned<PodCidrClaim>> claims)
        => claims.Where(c => c.Value.Node == node && InPools(c.Value.Cidr)).OrderBy(c => c.Revision);

    private bool InPools(IPNetwork cidr) => cidr.PrefixLength == maskSize && pools.Any(p => p.PrefixLength <= cidr.PrefixLength && p.Contains(cidr.BaseAddress));

    private async Task<IPNetwork?> KeepOneAsync(string node, IReadOnlyList<Versioned<PodCidrClaim>> claims, CancellationToken cancellationToken)
    {
        var owned = Owned(node, claims).ToList();
        foreach (var extra in owned.Skip(1))
        {
            await store.DeleteAsync(Kinds.PodCidr, extra.Key, extra.Revision, cancellationToken).ConfigureAwait(false);
        }

        return owned.Count == 0 ? null : owned[0].Value.Cidr;
    }

    private IPNetwork? FirstFree(List<IPNetwork> taken)
    {
        foreach (var pool in pools)
        {
            var count = Subnets.Count(pool, maskSize);
            // Scan in order: at most (claims + 1) candidates before a free one, whatever the pool's size.
            for (UInt128 i = 0; i < count; i++)
            {
                var candidate = Subnets.Nth(pool, maskSize, i);
                if (!taken.Exists(t => Subnets.Overlap(t, candidate)))
                {
                    return candidate;
                }
            }
        }

        return null;
    }
}
