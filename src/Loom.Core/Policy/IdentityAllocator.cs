using Loom.Core.Store;

namespace Loom.Core.Policy;

/// <summary>
/// Numbers label sets cluster-wide through the store, every step a compare-and-swap, so agents on many nodes may
/// allocate, release and collect at once: a label set never has two live numbers and a number never two label sets.
/// Allocation claims a free number (create of its "identity" record), binds the set to it (create of its
/// "identitykey"), then marks the record complete; a node's use is its "identityref". See <see cref="IdentityKey"/> for
/// how collection and acquisition meet.
/// </summary>
public sealed class IdentityAllocator
{
    private const int MaxAttempts = 200;

    private readonly IStore _store;
    private readonly string _node;
    private readonly TimeProvider _time;

    /// <param name="time">Stamps new identities' creation, which collection's minimum age is measured from.</param>
    public IdentityAllocator(IStore store, string node, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(node);
        if (node.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"node name \"{node}\" may not contain '/'", nameof(node));
        }

        _store = store;
        _node = node;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>
    /// The identity of <paramref name="labels"/>, allocated if the cluster has none, with this node's reference put.
    /// A reserved set (<see cref="SecurityLabels.IdentityFor"/>) gets its fixed number and touches nothing.
    /// </summary>
    public async Task<SecurityIdentity> AcquireAsync(SecurityLabels labels, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (SecurityLabels.IdentityFor(labels) is { } reserved)
        {
            return new SecurityIdentity { Id = reserved, Labels = labels.Labels };
        }

        var hash = labels.Hash();
        var created = new HashSet<uint>(); // references this call created, to take back if it ends with another number
        try
        {
            for (var attempt = 0; attempt < MaxAttempts; attempt++)
            {
                var key = await _store.GetAsync(Kinds.IdentityKey, hash, cancellationToken).ConfigureAwait(false);
                if (key is not null && key.Value.Labels != labels.Canonical)
                {
                    throw new InvalidOperationException($"identity key {hash} holds another label set: {key.Value.Labels}");
                }

                var id = key?.Value.Id ?? await AllocateAsync(labels, hash, cancellationToken).ConfigureAwait(false);
                if (id is { } candidate)
                {
                    if (await PutReferenceAsync(candidate, cancellationToken).ConfigureAwait(false))
                    {
                        created.Add(candidate);
                    }

                    if (await BoundAsync(candidate, labels, hash, cancellationToken).ConfigureAwait(false) is { } identity)
                    {
                        created.Remove(candidate);
                        return identity;
                    }
                }

                // Lost a race (a collection under way, another node's allocation half done): look again shortly.
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1 + attempt, 50)), cancellationToken).ConfigureAwait(false);
            }

            throw new InvalidOperationException($"could not acquire an identity for {labels.Canonical}: the store kept changing");
        }
        finally
        {
            foreach (var stray in created)
            {
                // Put for a number this call did not end with: it would keep a stranger's identity alive.
                await _store.DeleteAsync(Kinds.IdentityRef, IdentityRef.KeyOf(stray, _node), cancellationToken: CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Drops this node's reference; the identity stays until collected. A node has one reference per identity however
    /// many of its endpoints use it, so the caller counts its uses and releases after the last. Reserved numbers have none.
    /// </summary>
    public async Task ReleaseAsync(uint id, CancellationToken cancellationToken = default)
    {
        if (id >= ReservedIdentity.MinAllocated)
        {
            await _store.DeleteAsync(Kinds.IdentityRef, IdentityRef.KeyOf(id, _node), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>After a restart: drops this node's references to identities not in <paramref name="held"/>. Returns how many.</summary>
    public async Task<int> SyncReferencesAsync(IReadOnlySet<uint> held, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(held);
        var (refs, _) = await _store.ListAsync(Kinds.IdentityRef, cancellationToken).ConfigureAwait(false);
        var dropped = 0;
        foreach (var r in refs.Where(r => r.Value.Node == _node && !held.Contains(r.Value.Id)))
        {
            if (await _store.DeleteAsync(Kinds.IdentityRef, r.Key, r.Revision, cancellationToken).ConfigureAwait(false))
            {
                dropped++;
            }
        }

        return dropped;
    }

    /// <summary>
    /// Deletes the identities no node references that are at least <paramref name="minAge"/> old, and pending records
    /// of that age (an allocator died half way). Safe against a concurrent acquire: an identity that gains a reference
    /// while being collected is kept. Returns how many were deleted.
    /// </summary>
    public Task<int> CollectGarbageAsync(TimeSpan minAge, CancellationToken cancellationToken = default) =>
        IdentityCollector.CollectAsync(_store, _time.GetUtcNow() - minAge, cancellationToken);

    /// <summary>Claims a free number and binds the set to it; null when another node got there first.</summary>
    private async Task<uint?> AllocateAsync(SecurityLabels labels, string hash, CancellationToken ct)
    {
        var (existing, _) = await _store.ListAsync(Kinds.Identity, ct).ConfigureAwait(false);
        if (FreeId(existing.Select(i => i.Value.Id).ToHashSet()) is not { } id)
        {
            throw new InvalidOperationException(
                $"no free identity: all {ReservedIdentity.MaxAllocated - ReservedIdentity.MinAllocated + 1} numbers from {ReservedIdentity.MinAllocated} are in use");
        }

        var record = new SecurityIdentity { Id = id, Labels = labels.Labels, Pending = true, Created = _time.GetUtcNow() };
        var claim = await _store.PutAsync(Kinds.Identity, record, expectedRevision: 0, cancellationToken: ct).ConfigureAwait(false);
        if (!claim.Succeeded)
        {
            return null;
        }

        var bind = await _store.PutAsync(Kinds.IdentityKey, new IdentityKey { Hash = hash, Id = id, Labels = labels.Canonical }, expectedRevision: 0,
            cancellationToken: ct).ConfigureAwait(false);
        if (!bind.Succeeded)
        {
            // Another node bound the set first: give the number back and use theirs.
            await _store.DeleteAsync(Kinds.Identity, record.Key, claim.Revision, ct).ConfigureAwait(false);
            return null;
        }

        var complete = await _store.PutAsync(Kinds.Identity, record with { Pending = false }, expectedRevision: claim.Revision, cancellationToken: ct)
            .ConfigureAwait(false);
        if (!complete.Succeeded)
        {
            // The pending record was collected meanwhile, so the number may be someone else's now: unbind and start over.
            await _store.DeleteAsync(Kinds.IdentityKey, hash, bind.Revision, ct).ConfigureAwait(false);
            return null;
        }

        return id;
    }

    /// <summary>True if this call created the reference (false: the node already had it).</summary>
    private async Task<bool> PutReferenceAsync(uint id, CancellationToken ct) =>
        (await _store.PutAsync(Kinds.IdentityRef, new IdentityRef { Id = id, Node = _node }, expectedRevision: 0, cancellationToken: ct).ConfigureAwait(false))
        .Succeeded;

    /// <summary>
    /// After the reference is put: the identity if the binding still stands. A collector that marks it from now on
    /// sees the reference; one that marked it before loses to the mark being cleared here.
    /// </summary>
    private async Task<SecurityIdentity?> BoundAsync(uint id, SecurityLabels labels, string hash, CancellationToken ct)
    {
        var key = await _store.GetAsync(Kinds.IdentityKey, hash, ct).ConfigureAwait(false);
        var identity = await _store.GetAsync(Kinds.Identity, SecurityIdentity.KeyOf(id), ct).ConfigureAwait(false);
        if (key is not { Value.Id: var keyId } || keyId != id || identity is not { Value.Pending: false }
            || !SecurityLabels.FromLabels(identity.Value.Labels).Equals(labels))
        {
            return null;
        }

        if (key.Value.Dying
            && !(await _store.PutAsync(Kinds.IdentityKey, key.Value with { Dying = false }, expectedRevision: key.Revision, cancellationToken: ct)
                .ConfigureAwait(false)).Succeeded)
        {
            return null;
        }

        return identity.Value;
    }

    private static uint? FreeId(HashSet<uint> used)
    {
        const uint span = ReservedIdentity.MaxAllocated - ReservedIdentity.MinAllocated + 1;
        if (used.Count(u => u >= ReservedIdentity.MinAllocated && u <= ReservedIdentity.MaxAllocated) >= span)
        {
            return null;
        }

        // A random start keeps racing nodes off one number; the first free one from there is taken.
        var start = (uint)Random.Shared.NextInt64(span);
        for (uint i = 0; i < span; i++)
        {
            var id = ReservedIdentity.MinAllocated + ((start + i) % span);
            if (!used.Contains(id))
            {
                return id;
            }
        }

        return null;
    }
}
