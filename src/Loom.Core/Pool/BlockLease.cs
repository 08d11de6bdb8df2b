using System.Net;
using Loom.Core.Store;

namespace Loom.Core.Pool;

/// <summary>
/// Flannel's subnet lease for a node's pod CIDR claims: they are held under one store lease of TTL (the node object's
/// lease + the grace), renewed with the node's heartbeat. A node whose agent is gone loses its node object when that
/// lease lapses, and its blocks one grace later: the store deletes the claims itself, so no agent has to decide (or
/// race) to free them, and the blocks return to the pool. A node back within the grace finds its claims (keyed by
/// CIDR, naming it) and keeps its blocks. With no TTL the claims are kept forever (detached from any lease).
/// </summary>
public sealed class BlockLease(IStore store, string node, TimeSpan? ttl)
{
    private long _lease;

    /// <summary>The store lease the node's claims are held under; 0 before the first renewal, or without a TTL.</summary>
    public long Id => _lease;

    /// <summary>The lease TTL for a node lease of <paramref name="nodeLease"/> and a grace of <paramref name="grace"/> (0: forever, null).</summary>
    public static TimeSpan? Ttl(TimeSpan nodeLease, TimeSpan grace)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(grace, TimeSpan.Zero);
        return grace == TimeSpan.Zero ? null : nodeLease + grace;
    }

    /// <summary>
    /// Renews the lease (a new one if it lapsed) and moves onto it every claim of the node held otherwise: claims
    /// made since the last renewal (the allocator makes them lease-less), those of the agent's previous life, and
    /// those made before claims had leases. If the lease had lapsed (the claims went with it) the blocks still
    /// <paramref name="inUse"/> are claimed again where no one else took them meanwhile. Returns what it found, for
    /// the agent's log.
    /// </summary>
    public async Task<BlockLeaseRenewal> RenewAsync(IEnumerable<IPNetwork>? inUse = null, CancellationToken cancellationToken = default)
    {
        var lapsed = false;
        if (ttl is { } t && (_lease == 0 || !await store.KeepAliveAsync(_lease, cancellationToken).ConfigureAwait(false)))
        {
            lapsed = _lease != 0;
            _lease = await store.GrantLeaseAsync(t, cancellationToken).ConfigureAwait(false);
        }

        var (items, _) = await store.ListAsync(Kinds.PodCidr.Name, cancellationToken).ConfigureAwait(false);
        var held = 0;
        var moved = new List<string>();
        foreach (var item in items)
        {
            // A claim someone else wrote malformed is none of ours to move; the network controller reports it.
            if (!TypedStoreExtensions.TryDecode(Kinds.PodCidr, item.Value, out var claim, out _) || claim.Node != node)
            {
                continue;
            }

            held++;
            if (item.Lease == _lease)
            {
                continue;
            }

            // CAS on the claim's revision: one released (or re-claimed) since the list stays as it is.
            var put = await store.PutAsync(Kinds.PodCidr.Name, item.Key, item.Value, expectedRevision: item.ModRevision, lease: _lease,
                cancellationToken: cancellationToken).ConfigureAwait(false);
            if (put.Succeeded)
            {
                moved.Add(item.Key);
            }
        }

        var lost = new List<string>();
        if (lapsed)
        {
            foreach (var block in inUse ?? [])
            {
                // Only after a lapse: in steady state a block missing its claim is one being released (a network gone).
                var put = await store.PutAsync(Kinds.PodCidr, new PodCidrClaim(block, node), expectedRevision: 0, lease: _lease,
                    cancellationToken: cancellationToken).ConfigureAwait(false);
                if (put.Succeeded)
                {
                    held++;
                    moved.Add(block.ToString());
                }
                else if ((await store.GetAsync(Kinds.PodCidr, block.ToString(), cancellationToken).ConfigureAwait(false))?.Value.Node != node)
                {
                    lost.Add(block.ToString());
                }
            }
        }

        return new BlockLeaseRenewal(_lease, lapsed, held, moved, lost);
    }
}

/// <param name="Lapsed">The previous lease had expired (the store was out of reach longer than the TTL): the node's
/// claims went with it and its blocks may have been handed to other nodes.</param>
/// <param name="Held">How many claims the node holds.</param>
/// <param name="Moved">The claims (CIDRs) just moved onto <paramref name="Lease"/>, or made again after a lapse.</param>
/// <param name="Lost">Blocks in use here that another node claimed during the lapse: two nodes now route the same pod
/// addresses until this one is restarted onto a new block.</param>
public sealed record BlockLeaseRenewal(long Lease, bool Lapsed, int Held, IReadOnlyList<string> Moved, IReadOnlyList<string> Lost);
