namespace Loom.Core.Watch;

/// <summary>
/// Changes in the order they happened, at most one per key (coalesced while the subscriber was busy);
/// after applying them the subscriber has seen the cache as of <see cref="Revision"/>. <see cref="Since"/> is when the
/// oldest of them reached the cache (a <see cref="System.Diagnostics.Stopwatch"/> timestamp, 0 if unknown), so a
/// controller can measure event-to-kernel latency.
/// </summary>
public sealed record ChangeBatch<T>(IReadOnlyList<Change<T>> Changes, long Revision, long Since = 0)
    where T : class;
