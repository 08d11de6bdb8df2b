using System.Data;
using System.Runtime.CompilerServices;
using Loom.Core.Store;
using Microsoft.Data.Sqlite;

namespace Loom.Store.Sqlite;

/// <summary>
/// <see cref="IStore"/> on one SQLite file in WAL mode, shared by many processes. Every write runs in
/// BEGIN IMMEDIATE, so writers are serialized across processes and the revision counter in <c>meta</c> can be
/// bumped in the same transaction as the change it numbers. Each change is also appended to <c>changes</c>;
/// watchers read that table by revision when the file is written (<see cref="SqliteFileEvents"/>), when the next lease
/// expires, and every <see cref="SqliteStoreOptions.PollInterval"/> in case an event was missed. Because a revision
/// only becomes visible when its transaction commits, and writers are serialized, a reader never sees revision n+1
/// before n: the log has no gaps.
/// Expired leases are swept by whichever call notices them first (any write, a read, or a watch's read). The change log
/// is compacted by the writer that takes it past the retention, inside its own transaction, so the processes sharing
/// the file never compact at once; freed pages go back to the filesystem through incremental vacuum.
/// </summary>
internal sealed class SqliteStoreImpl : IStore
{
    private const int WatchBatch = 1000;

    private const long WalLimitBytes = 4L << 20;

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS meta (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            revision INTEGER NOT NULL,
            compacted INTEGER NOT NULL);
        INSERT OR IGNORE INTO meta (id, revision, compacted) VALUES (1, 0, 0);
        CREATE TABLE IF NOT EXISTS items (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            create_rev INTEGER NOT NULL,
            mod_rev INTEGER NOT NULL,
            lease INTEGER NOT NULL,
            PRIMARY KEY (kind, key)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS items_by_lease ON items (lease) WHERE lease <> 0;
        CREATE TABLE IF NOT EXISTS changes (
            revision INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            op INTEGER NOT NULL,
            value TEXT);
        CREATE TABLE IF NOT EXISTS leases (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ttl_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expires_ms);
        """;

    private readonly string _connectionString;
    private readonly SqliteStoreOptions _options;
    private readonly SqliteChangeNotifier _notifier;
    private readonly CancellationTokenSource _life = new(); // cancelled by DisposeAsync: ends the watches
    private int _open; // connections this instance opened and has not closed yet
    private volatile bool _disposed;
    private long _watchReads;

    public SqliteStoreImpl(string path, SqliteStoreOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(options.KeepRevisions, nameof(options.KeepRevisions));
        _options = options;
        _notifier = new SqliteChangeNotifier(path, ReadRevision, options.TimeProvider, options.PollInterval, options.FileEvents);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            DefaultTimeout = (int)Math.Ceiling(options.BusyTimeout.TotalSeconds),
        }.ToString();
    }

    /// <summary>How many times this store's watches have read the change log (tests: an idle watch must not poll).</summary>
    internal long WatchReads => Interlocked.Read(ref _watchReads);

    internal SqliteChangeNotifier Notifier => _notifier;

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        // Only a file without tables takes this: an older file stays at auto_vacuum=NONE, where compaction's freed
        // pages are reused by later writes (the file stops growing) but never returned (it does not shrink).
        Exec(c, null, "PRAGMA auto_vacuum=INCREMENTAL;");
        // WAL lets readers and watchers run while one process writes; the mode is stored in the file.
        Exec(c, null, "PRAGMA journal_mode=WAL;");
        await using var tx = c.BeginTransaction(deferred: false);
        Exec(c, tx, Schema);
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        await using var c = await OpenForReadAsync(cancellationToken).ConfigureAwait(false);
        return ReadMeta(c, null).Revision;
    }

    public async Task<StoreItem?> GetAsync(string kind, string key, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenForReadAsync(cancellationToken).ConfigureAwait(false);
        return ReadItem(c, null, kind, key);
    }

    public async Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenForReadAsync(cancellationToken).ConfigureAwait(false);
        // A deferred transaction pins one WAL snapshot, so the items and the revision agree.
        await using var tx = c.BeginTransaction(deferred: true);
        var revision = ReadMeta(c, tx).Revision;
        var items = new List<StoreItem>();
        using (var cmd = Command(c, tx, "SELECT key, value, create_rev, mod_rev, lease FROM items WHERE kind = $kind ORDER BY key", ("$kind", kind)))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                items.Add(new StoreItem(kind, r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4)));
            }
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return new StoreList(items, revision);
    }

    public async Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0,
        CancellationToken cancellationToken = default)
    {
        StoreKeys.ValidateKind(kind);
        StoreKeys.ValidateKey(key);
        ArgumentNullException.ThrowIfNull(value);
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        return await WriteAsync(c, tx =>
        {
            var current = ReadItem(c, tx, kind, key);
            if (expectedRevision is { } expected && (current?.ModRevision ?? 0) != expected)
            {
                return new PutResult(false, current?.ModRevision ?? 0);
            }

            if (lease != 0 && Scalar(c, tx, "SELECT COUNT(*) FROM leases WHERE id = $id", ("$id", lease)) == 0)
            {
                throw new InvalidOperationException($"lease {lease} not found (expired or revoked)");
            }

            var rev = NextRevision(c, tx);
            Exec(c, tx, """
                INSERT INTO items (kind, key, value, create_rev, mod_rev, lease) VALUES ($kind, $key, $value, $rev, $rev, $lease)
                ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev, lease = excluded.lease
                """, ("$kind", kind), ("$key", key), ("$value", value), ("$rev", rev), ("$lease", lease));
            AppendChange(c, tx, rev, kind, key, StoreEventType.Put, value);
            return new PutResult(true, rev);
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> DeleteAsync(string kind, string key, long? expectedRevision = null, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        return await WriteAsync(c, tx =>
        {
            var current = ReadItem(c, tx, kind, key);
            if (current is null || (expectedRevision is { } e && current.ModRevision != e))
            {
                return false;
            }

            DeleteItem(c, tx, kind, key);
            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // Disposing the store ends its watches too, so none reads (or re-creates) the file after it.
        using var life = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _life.Token);
        cancellationToken = life.Token;
        // One connection for the watch's lifetime: reading through the pool would churn it every wake-up.
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        _notifier.Start();
        var next = fromRevision;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Taken before the read: a write committed after it completes this task, so no change slips between the
            // read and the wait.
            var changed = _notifier.Changed;
            if (LeasesExpired(c, null))
            {
                await WriteAsync(c, _ => { }, cancellationToken).ConfigureAwait(false);
            }

            Interlocked.Increment(ref _watchReads);
            var batch = new List<StoreEvent>();
            long? nextExpiry;
            await using (var tx = c.BeginTransaction(deferred: true))
            {
                var meta = ReadMeta(c, tx);
                if (next < meta.Compacted)
                {
                    throw new StoreCompactedException(next, meta.Compacted);
                }

                var sql = "SELECT revision, kind, key, op, value FROM changes WHERE revision > $next"
                          + (kind is null ? string.Empty : " AND kind = $kind")
                          + $" ORDER BY revision LIMIT {WatchBatch}";
                using (var cmd = Command(c, tx, sql, ("$next", next), ("$kind", (object?)kind ?? DBNull.Value)))
                using (var r = cmd.ExecuteReader())
                {
                    while (r.Read())
                    {
                        batch.Add(new StoreEvent((StoreEventType)r.GetInt32(3), r.GetString(1), r.GetString(2),
                            r.IsDBNull(4) ? null : r.GetString(4), r.GetInt64(0)));
                    }
                }

                nextExpiry = NextLeaseExpiryMs(c, tx);
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                // A short batch means nothing else up to the snapshot's revision matched: skip past it.
                next = batch.Count < WatchBatch ? meta.Revision : batch[^1].Revision;
            }

            foreach (var e in batch)
            {
                yield return e;
            }

            if (batch.Count < WatchBatch)
            {
                // Nothing to read until the revision moves, or the first lease expires (someone must sweep it).
                var wait = nextExpiry is { } expiry
                    ? TimeSpan.FromMilliseconds(Math.Clamp(expiry - NowMs(), 0, (long)TimeSpan.FromDays(1).TotalMilliseconds))
                    : Timeout.InfiniteTimeSpan;
                await WaitForChangeAsync(changed, wait, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Waits until <paramref name="changed"/> completes or <paramref name="timeout"/> (infinite: -1 ms) passes.</summary>
    private async Task WaitForChangeAsync(Task changed, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (changed.IsCompleted || timeout == TimeSpan.Zero)
        {
            return;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = Task.Delay(timeout, _options.TimeProvider, stop.Token);
        await Task.WhenAny(changed, delay).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>The revision, read on a pooled connection (the notifier's check: one cheap read for all of a store's watches).</summary>
    private long ReadRevision()
    {
        using var c = Track(new SqliteConnection(_connectionString));
        c.Open();
        return ReadMeta(c, null).Revision;
    }

    public async Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var ttlMs = (long)Math.Ceiling(ttl.TotalMilliseconds);
        return await WriteAsync(c, tx => Scalar(c, tx, "INSERT INTO leases (ttl_ms, expires_ms) VALUES ($ttl, $exp) RETURNING id",
            ("$ttl", ttlMs), ("$exp", NowMs() + ttlMs)), cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> KeepAliveAsync(long lease, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        return await WriteAsync(c, tx => Exec(c, tx, "UPDATE leases SET expires_ms = $now + ttl_ms WHERE id = $id",
            ("$now", NowMs()), ("$id", lease)) == 1, cancellationToken).ConfigureAwait(false);
    }

    public async Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await WriteAsync(c, tx => ExpireLease(c, tx, lease), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes change-log rows up to <paramref name="revision"/> (writes also do it by themselves: see <see cref="SqliteStoreOptions.KeepRevisions"/>).</summary>
    public async Task CompactAsync(long revision, CancellationToken cancellationToken = default)
    {
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await WriteAsync(c, tx => Compact(c, tx, Math.Min(revision, ReadMeta(c, tx).Revision)), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Ends the watches and waits (up to 5 s) until every connection this instance opened is closed, so nothing of
    /// it touches the file afterwards: a late read would re-create the database (or its -wal / -shm) under a caller
    /// who is deleting it.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _notifier.Dispose();
        await _life.CancelAsync().ConfigureAwait(false);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (Volatile.Read(ref _open) > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10).ConfigureAwait(false);
        }

        using var c = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(c);
        _life.Dispose();
    }

    /// <summary>Counts <paramref name="c"/> as open until it closes (Close and Dispose raise StateChange).</summary>
    private SqliteConnection Track(SqliteConnection c)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Interlocked.Increment(ref _open);
        var closed = 0;
        void Release()
        {
            if (Interlocked.Exchange(ref closed, 1) == 0)
            {
                Interlocked.Decrement(ref _open);
            }
        }

        c.StateChange += (_, e) =>
        {
            if (e.CurrentState == System.Data.ConnectionState.Closed && e.OriginalState != System.Data.ConnectionState.Closed)
            {
                Release();
            }
        };
        c.Disposed += (_, _) => Release(); // a connection that never opened
        return c;
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var c = Track(new SqliteConnection(_connectionString));
        try
        {
            await c.OpenAsync(cancellationToken).ConfigureAwait(false);
            // busy_timeout makes a writer wait for another process's lock instead of failing with SQLITE_BUSY;
            // journal_size_limit truncates the WAL after a checkpoint, which otherwise stays at its largest size.
            Exec(c, null, $"PRAGMA busy_timeout = {(long)_options.BusyTimeout.TotalMilliseconds}; PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = {WalLimitBytes};");
            return c;
        }
        catch
        {
            await c.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Opens for a read, first sweeping expired leases so a read never returns a key that should be gone.</summary>
    private async Task<SqliteConnection> OpenForReadAsync(CancellationToken cancellationToken)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        if (LeasesExpired(c, null))
        {
            await WriteAsync(c, _ => { }, cancellationToken).ConfigureAwait(false);
        }

        return c;
    }

    private Task<int> WriteAsync(SqliteConnection c, Action<SqliteTransaction> body, CancellationToken cancellationToken)
        => WriteAsync(c, tx =>
        {
            body(tx);
            return 0;
        }, cancellationToken);

    /// <summary>
    /// Runs <paramref name="body"/> in BEGIN IMMEDIATE (deferred: false) after sweeping expired leases, then compacts
    /// the change log if this write took it past the retention.
    /// </summary>
    private async Task<T> WriteAsync<T>(SqliteConnection c, Func<SqliteTransaction, T> body, CancellationToken cancellationToken)
    {
        await using var tx = c.BeginTransaction(deferred: false);
        SweepExpiredLeases(c, tx);
        var result = body(tx);
        AutoCompact(c, tx);
        var revision = ReadMeta(c, tx).Revision;
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        // This process's watches need not wait for the file event (nor, without inotify, for the poll).
        _notifier.Committed(revision);
        return result;
    }

    /// <summary>
    /// Keeps the last <see cref="SqliteStoreOptions.KeepRevisions"/> revisions, compacting in steps of a tenth of them
    /// so the delete (and the vacuum after it) is paid once per many writes, not on each.
    /// </summary>
    private void AutoCompact(SqliteConnection c, SqliteTransaction tx)
    {
        var keep = _options.KeepRevisions;
        if (keep == 0)
        {
            return;
        }

        var (revision, compacted) = ReadMeta(c, tx);
        if (revision - compacted > keep + Math.Max(1, keep / 10))
        {
            Compact(c, tx, revision - keep);
        }
    }

    private static void Compact(SqliteConnection c, SqliteTransaction tx, long upTo)
    {
        Exec(c, tx, "DELETE FROM changes WHERE revision <= $r", ("$r", upTo));
        Exec(c, tx, "UPDATE meta SET compacted = max(compacted, $r)", ("$r", upTo));
        // Returns the freed pages to the filesystem (a no-op on a file made before auto_vacuum was set).
        Exec(c, tx, "PRAGMA incremental_vacuum;");
    }

    /// <summary>When the first lease expires (ms since the epoch), null without leases: a watch wakes then to sweep it.</summary>
    private static long? NextLeaseExpiryMs(SqliteConnection c, SqliteTransaction tx)
    {
        using var cmd = Command(c, tx, "SELECT MIN(expires_ms) FROM leases");
        return cmd.ExecuteScalar() is long ms ? ms : null;
    }

    private bool LeasesExpired(SqliteConnection c, SqliteTransaction? tx)
        => Scalar(c, tx, "SELECT EXISTS (SELECT 1 FROM leases WHERE expires_ms <= $now)", ("$now", NowMs())) != 0;

    private void SweepExpiredLeases(SqliteConnection c, SqliteTransaction tx)
    {
        var expired = new List<long>();
        using (var cmd = Command(c, tx, "SELECT id FROM leases WHERE expires_ms <= $now ORDER BY id", ("$now", NowMs())))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                expired.Add(r.GetInt64(0));
            }
        }

        foreach (var lease in expired)
        {
            ExpireLease(c, tx, lease);
        }
    }

    private static void ExpireLease(SqliteConnection c, SqliteTransaction tx, long lease)
    {
        var keys = new List<(string Kind, string Key)>();
        using (var cmd = Command(c, tx, "SELECT kind, key FROM items WHERE lease = $lease ORDER BY kind, key", ("$lease", lease)))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                keys.Add((r.GetString(0), r.GetString(1)));
            }
        }

        foreach (var (kind, key) in keys)
        {
            DeleteItem(c, tx, kind, key);
        }

        Exec(c, tx, "DELETE FROM leases WHERE id = $id", ("$id", lease));
    }

    private static void DeleteItem(SqliteConnection c, SqliteTransaction tx, string kind, string key)
    {
        var rev = NextRevision(c, tx);
        Exec(c, tx, "DELETE FROM items WHERE kind = $kind AND key = $key", ("$kind", kind), ("$key", key));
        AppendChange(c, tx, rev, kind, key, StoreEventType.Delete, null);
    }

    private static long NextRevision(SqliteConnection c, SqliteTransaction tx)
        => Scalar(c, tx, "UPDATE meta SET revision = revision + 1 RETURNING revision");

    private static void AppendChange(SqliteConnection c, SqliteTransaction tx, long rev, string kind, string key, StoreEventType op, string? value)
        => Exec(c, tx, "INSERT INTO changes (revision, kind, key, op, value) VALUES ($rev, $kind, $key, $op, $value)",
            ("$rev", rev), ("$kind", kind), ("$key", key), ("$op", (int)op), ("$value", (object?)value ?? DBNull.Value));

    private static (long Revision, long Compacted) ReadMeta(SqliteConnection c, SqliteTransaction? tx)
    {
        using var cmd = Command(c, tx, "SELECT revision, compacted FROM meta WHERE id = 1");
        using var r = cmd.ExecuteReader();
        return r.Read() ? (r.GetInt64(0), r.GetInt64(1)) : throw new InvalidOperationException("store schema missing its meta row");
    }

    private static StoreItem? ReadItem(SqliteConnection c, SqliteTransaction? tx, string kind, string key)
    {
        using var cmd = Command(c, tx, "SELECT value, create_rev, mod_rev, lease FROM items WHERE kind = $kind AND key = $key",
            ("$kind", kind), ("$key", key));
        using var r = cmd.ExecuteReader();
        return r.Read() ? new StoreItem(kind, key, r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3)) : null;
    }

    private long NowMs() => _options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    private static SqliteCommand Command(SqliteConnection c, SqliteTransaction? tx, string sql, params (string Name, object Value)[] parameters)
    {
        var cmd = c.CreateCommand();
        cmd.Transaction = tx;
#pragma warning disable CA2100 // SQL text is constant; every value is a parameter.
        cmd.CommandText = sql;
#pragma warning restore CA2100
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        return cmd;
    }

    private static int Exec(SqliteConnection c, SqliteTransaction? tx, string sql, params (string Name, object Value)[] parameters)
    {
        using var cmd = Command(c, tx, sql, parameters);
        return cmd.ExecuteNonQuery();
    }

    private static long Scalar(SqliteConnection c, SqliteTransaction? tx, string sql, params (string Name, object Value)[] parameters)
    {
        using var cmd = Command(c, tx, sql, parameters);
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
