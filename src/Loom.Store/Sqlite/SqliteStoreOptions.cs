namespace Loom.Store.Sqlite;

public sealed record SqliteStoreOptions
{
    /// <summary>etcd's <c>--auto-compaction-mode revision</c> default retention; also what keeps the file bounded.</summary>
    public const long DefaultKeepRevisions = 10_000;

    /// <summary>
    /// How often a watcher reads the change log when nothing told it of a change: a safety net only, since a write to the
    /// file (from any process) wakes the watchers through inotify, and each wakes for the next lease expiry too. A file
    /// event whose commit is not visible yet is looked at again 20 and 250 ms later (<c>SqliteChangeNotifier</c>), so
    /// this only bounds a commit later than that: every wake-up counts in an idle agent (it was 2 s).
    /// </summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Tests: false ignores the file's events, so watches see other instances' writes only at the safety poll.</summary>
    internal bool FileEvents { get; init; } = true;

    /// <summary>How long a writer waits for another process's write lock before failing.</summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Lease expiry reads this clock; every process sharing a file must share it too (they do: same machine).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Auto-compaction by revision, as etcd's <c>--auto-compaction-mode revision</c>: the change log keeps the last this
    /// many revisions, and a watcher further behind gets <see cref="Loom.Core.Store.StoreCompactedException"/> and
    /// re-lists. 0 keeps every change (the log grows by one row per write until <c>CompactAsync</c>).
    /// </summary>
    public long KeepRevisions { get; init; } = DefaultKeepRevisions;
}
