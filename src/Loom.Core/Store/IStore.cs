namespace Loom.Core.Store;

/// <summary>
/// The cluster state: JSON documents addressed by (kind, key), versioned by one store-wide revision that
/// every write increments, in the style of etcd's MVCC keyspace. Agents list at a revision and then watch
/// from it, so they never miss a change between the two.
/// </summary>
public interface IStore : IAsyncDisposable
{
    /// <summary>The revision of the last write; 0 (SQLite) or 1 (etcd) for an empty store.</summary>
    Task<long> GetRevisionAsync(CancellationToken cancellationToken = default);

    Task<StoreItem?> GetAsync(string kind, string key, CancellationToken cancellationToken = default);

    /// <summary>All items of a kind, ordered by key, with the store revision they were read at.</summary>
    Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes a value. With <paramref name="expectedRevision"/> the write is a compare-and-swap: it succeeds only if
    /// the item's mod revision equals it (0 = the item must not exist). With <paramref name="lease"/> (non-zero) the
    /// item is deleted when the lease expires.
    /// </summary>
    Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0,
        CancellationToken cancellationToken = default);

    /// <summary>Deletes an item; with <paramref name="expectedRevision"/> only if its mod revision matches. True if something was deleted.</summary>
    Task<bool> DeleteAsync(string kind, string key, long? expectedRevision = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Every change (of one kind, or all kinds when <paramref name="kind"/> is null) with revision strictly greater than
    /// <paramref name="fromRevision"/>, in revision order, without gaps, then live changes until cancelled.
    /// Throws <see cref="StoreCompactedException"/> if that history has been compacted away.
    /// </summary>
    IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision, CancellationToken cancellationToken = default);

    /// <summary>A lease that lives <paramref name="ttl"/> unless kept alive (etcd rounds up to whole seconds and a minimum).</summary>
    Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default);

    /// <summary>Renews a lease for its full TTL; false if it has already expired (its keys are gone: re-register).</summary>
    Task<bool> KeepAliveAsync(long lease, CancellationToken cancellationToken = default);

    /// <summary>Ends a lease now, deleting its keys.</summary>
    Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken = default);

    /// <summary>Drops change history up to and including <paramref name="revision"/>; watches from before it then fail.</summary>
    Task CompactAsync(long revision, CancellationToken cancellationToken = default);
}
