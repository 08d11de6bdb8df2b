namespace Loom.Core.Watch;

/// <summary>
/// Changes in the order they happened, at most one per key (coalesced while the subscriber was busy);
/// after applying them the subscriber has seen the cache as of <see cref="Revision"/>.
/// </summary>
public sealed record ChangeBatch<T>(IReadOnlyList<Change<T>> Changes, long Revision)
    where T : class;
