using Loom.Core.Store;

namespace Loom.Core.Watch;

/// <summary>
/// A read-only, eventually consistent copy of one store kind, kept current by list + watch (an informer).
/// Controllers read it and subscribe to its changes instead of listing the store on every pass.
/// </summary>
public interface IObjectCache<T>
    where T : class
{
    string Kind { get; }

    /// <summary>True once the first list is in the table; before that an empty table means "unknown", not "none".</summary>
    bool HasSynced { get; }

    /// <summary>Completes when <see cref="HasSynced"/> becomes true.</summary>
    Task Synced { get; }

    /// <summary>The store revision the table reflects.</summary>
    long Revision { get; }

    /// <summary>An immutable snapshot of the table, key to object; safe to read from any thread.</summary>
    IReadOnlyDictionary<string, Versioned<T>> Snapshot { get; }

    Versioned<T>? Get(string key);

    /// <summary>
    /// Completes once the table reflects at least <paramref name="revision"/>, e.g. the revision of one's own write
    /// (read-your-writes). Only revisions of this kind's changes or a list are ever reached.
    /// </summary>
    Task WaitForRevisionAsync(long revision, CancellationToken cancellationToken = default);

    /// <summary>
    /// Adds a secondary index: <paramref name="indexer"/> gives the index values an object is filed under
    /// (e.g. an endpoint's service key). It is built from the current table and kept up to date.
    /// </summary>
    void AddIndex(string name, Func<T, IEnumerable<string>> indexer);

    /// <summary>The objects filed under <paramref name="value"/> in index <paramref name="name"/>, ordered by key.</summary>
    IReadOnlyList<Versioned<T>> ByIndex(string name, string value);

    /// <summary>
    /// Calls <paramref name="handler"/> with the changes from now on, first with every current object as Added.
    /// Calls never overlap; changes that arrive meanwhile are coalesced into the next batch. Dispose to stop.
    /// </summary>
    IDisposable Subscribe(Func<ChangeBatch<T>, CancellationToken, Task> handler);
}
