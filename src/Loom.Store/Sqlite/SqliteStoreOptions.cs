namespace Loom.Store.Sqlite;

public sealed record SqliteStoreOptions
{
    /// <summary>How often watchers read the change log; also how promptly they notice expired leases.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>How long a writer waits for another process's write lock before failing.</summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Lease expiry reads this clock; every process sharing a file must share it too (they do: same machine).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
