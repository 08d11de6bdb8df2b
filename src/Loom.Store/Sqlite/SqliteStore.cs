using Loom.Core.Store;

namespace Loom.Store.Sqlite;

/// <summary>
/// Opens the SQLite-backed store. Any number of processes on one machine may open the same file: writes are
/// serialized by SQLite's write lock, and watchers read the change log when inotify reports a write to the file.
/// </summary>
public static class SqliteStore
{
    public static async Task<IStore> OpenAsync(string path, SqliteStoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var store = new SqliteStoreImpl(path, options ?? new SqliteStoreOptions());
        await store.InitializeAsync(cancellationToken).ConfigureAwait(false);
        return store;
    }
}
