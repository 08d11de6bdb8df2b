using Loom.Core.Store;

namespace Loom.Core.Policy;

/// <summary>
/// Garbage collection of identities, every delete a compare-and-swap. An unreferenced binding is first marked
/// <see cref="IdentityKey.Dying"/>, then the references are read again: one that appeared keeps it (the mark is
/// cleared), otherwise the binding and then the record go. Pending records of crashed allocators and bindings whose
/// record is gone or another set's are removed too.
/// </summary>
internal static class IdentityCollector
{
    public static async Task<int> CollectAsync(IStore store, DateTimeOffset createdBefore, CancellationToken ct)
    {
        var deleted = 0;
        var (records, _) = await store.ListAsync(Kinds.Identity, ct).ConfigureAwait(false);
        foreach (var r in records.Where(r => r.Value.Pending && r.Value.Created <= createdBefore))
        {
            // The allocator, if alive, then fails to complete the record and unbinds.
            if (await store.DeleteAsync(Kinds.Identity, r.Key, r.Revision, ct).ConfigureAwait(false))
            {
                deleted++;
            }
        }

        // Bindings first, records after: a record missing then was deleted after its binding was made, so nobody
        // holds that binding (a complete record goes only after its binding); records first would not say that.
        var (keys, _) = await store.ListAsync(Kinds.IdentityKey, ct).ConfigureAwait(false);
        (records, _) = await store.ListAsync(Kinds.Identity, ct).ConfigureAwait(false);
        var byId = records.ToDictionary(r => r.Value.Id);
        var referenced = await ReferencedAsync(store, ct).ConfigureAwait(false);
        foreach (var key in keys)
        {
            var record = byId.GetValueOrDefault(key.Value.Id);
            if (record is null || SecurityLabels.FromLabels(record.Value.Labels).Canonical != key.Value.Labels)
            {
                // Nobody can be bound through it (acquirers check the record): drop it so the set can be numbered again.
                await store.DeleteAsync(Kinds.IdentityKey, key.Key, key.Revision, ct).ConfigureAwait(false);
                continue;
            }

            if (record.Value.Pending || record.Value.Created > createdBefore || (referenced.Contains(key.Value.Id) && !key.Value.Dying))
            {
                continue;
            }

            if (await CollectAsync(store, key, record, ct).ConfigureAwait(false))
            {
                deleted++;
            }
        }

        return deleted;
    }

    private static async Task<bool> CollectAsync(IStore store, Versioned<IdentityKey> key, Versioned<SecurityIdentity> record, CancellationToken ct)
    {
        var revision = key.Revision;
        if (!key.Value.Dying)
        {
            var mark = await store.PutAsync(Kinds.IdentityKey, key.Value with { Dying = true }, expectedRevision: key.Revision, cancellationToken: ct)
                .ConfigureAwait(false);
            if (!mark.Succeeded)
            {
                return false;
            }

            revision = mark.Revision;
        }

        // Read after the mark: an acquirer whose reference is not here yet will find the mark and clear it, which fails our delete.
        if ((await ReferencedAsync(store, ct).ConfigureAwait(false)).Contains(key.Value.Id))
        {
            await store.PutAsync(Kinds.IdentityKey, key.Value with { Dying = false }, expectedRevision: revision, cancellationToken: ct).ConfigureAwait(false);
            return false;
        }

        if (!await store.DeleteAsync(Kinds.IdentityKey, key.Key, revision, ct).ConfigureAwait(false))
        {
            return false;
        }

        await store.DeleteAsync(Kinds.Identity, record.Key, record.Revision, ct).ConfigureAwait(false);
        return true;
    }

    private static async Task<HashSet<uint>> ReferencedAsync(IStore store, CancellationToken ct)
    {
        var (refs, _) = await store.ListAsync(Kinds.IdentityRef, ct).ConfigureAwait(false);
        return refs.Select(r => r.Value.Id).ToHashSet();
    }
}
