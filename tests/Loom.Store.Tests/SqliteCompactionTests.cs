using System.Net;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Core.Watch;
using Loom.Store.Sqlite;

namespace Loom.Store.Tests;

/// <summary>The SQLite store's auto-compaction by revision: the change log keeps the last N, watchers behind re-list, the file stays bounded.</summary>
public sealed class SqliteCompactionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-compact-").FullName;

    private string DbPath => Path.Combine(_dir, "state.db");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private Task<IStore> OpenAsync(long keep, TimeSpan? poll = null)
        => SqliteStore.OpenAsync(DbPath, new SqliteStoreOptions { KeepRevisions = keep, PollInterval = poll ?? TimeSpan.FromMilliseconds(20) });

    [Fact]
    public async Task Writes_past_the_retention_compact_the_log_by_themselves()
    {
        await using var store = await OpenAsync(keep: 10);
        long last = 0;
        for (var i = 0; i < 50; i++)
        {
            last = (await store.PutAsync("node", $"n{i % 5}", $"{i}")).Revision;
        }

        // The oldest history is gone, the last 10 revisions are all there.
        var e = await Assert.ThrowsAsync<StoreCompactedException>(() => TakeAsync(store.WatchAsync(null, 0), 1));
        Assert.Contains("compacted", e.Message, StringComparison.Ordinal);
        var tail = await TakeAsync(store.WatchAsync(null, last - 10), 10);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => last - 9 + i), tail.Select(t => t.Revision));
    }

    [Fact]
    public async Task Zero_keeps_every_revision()
    {
        await using var store = await OpenAsync(keep: 0);
        for (var i = 0; i < 50; i++)
        {
            await store.PutAsync("node", "n1", $"{i}");
        }

        Assert.Equal(50, (await TakeAsync(store.WatchAsync(null, 0), 50)).Count);
    }

    [Fact]
    public async Task Negative_retention_is_refused()
    {
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => OpenAsync(keep: -1));
        Assert.Contains("KeepRevisions", e.Message, StringComparison.Ordinal);
        var c = await Assert.ThrowsAsync<StoreConfigException>(() => StoreOpener.OpenAsync(new StoreConfig { Path = DbPath, KeepRevisions = -5 }));
        Assert.Contains("store.keepRevisions", c.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(DbPath));
    }

    [Fact]
    public async Task Two_processes_writing_and_compacting_at_once_keep_a_gapless_tail()
    {
        await using var a = await OpenAsync(keep: 20);
        await using var b = await OpenAsync(keep: 20);
        await Task.WhenAll(
            Task.Run(async () =>
            {
                for (var i = 0; i < 300; i++)
                {
                    await a.PutAsync("node", $"a{i % 7}", $"{i}");
                }
            }),
            Task.Run(async () =>
            {
                for (var i = 0; i < 300; i++)
                {
                    await b.PutAsync("node", $"b{i % 7}", $"{i}");
                }
            }));

        var head = await a.GetRevisionAsync();
        Assert.Equal(600, head);
        var tail = await TakeAsync(b.WatchAsync(null, head - 20), 20);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => head - 19 + i), tail.Select(t => t.Revision));
        await Assert.ThrowsAsync<StoreCompactedException>(() => TakeAsync(a.WatchAsync(null, head - 40), 1));
    }

    [Fact]
    public async Task A_cache_whose_watcher_fell_behind_relists_and_ends_up_equal_to_the_store()
    {
        // A watcher that sees another instance's writes only at its 1 s poll (file events off) falls behind a burst of
        // 100 writes with 10 revisions kept.
        await using var watched = await SqliteStore.OpenAsync(DbPath, new SqliteStoreOptions { KeepRevisions = 10, PollInterval = TimeSpan.FromSeconds(1), FileEvents = false });
        await using var store = await OpenAsync(keep: 10);
        await store.PutAsync(Kinds.Node, NodeNamed("n0", "first"));
        var errors = new List<CacheError>();
        var cache = new ObjectCache<Node>(watched, Kinds.Node, TimeProvider.System, e =>
        {
            lock (errors)
            {
                errors.Add(e);
            }
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var run = cache.RunAsync(cts.Token);
        await cache.Synced.WaitAsync(cts.Token);

        long last = 0;
        for (var i = 0; i < 100; i++)
        {
            last = (await store.PutAsync(Kinds.Node, NodeNamed($"n{i % 20}", $"v{i}"))).Revision;
        }

        for (var i = 10; i < 20; i++)
        {
            await store.DeleteAsync(Kinds.Node.Name, $"n{i}");
        }

        last = await store.GetRevisionAsync();
        await cache.WaitForRevisionAsync(last, cts.Token);
        lock (errors)
        {
            Assert.Contains(errors, e => e.Exception is StoreCompactedException);
        }

        var (items, _) = await store.ListAsync(Kinds.Node);
        Assert.Equal(items.Select(i => (i.Key, i.Value.UnderlayInterface)), cache.Snapshot.Values.OrderBy(v => v.Key, StringComparer.Ordinal)
            .Select(v => (v.Key, v.Value.UnderlayInterface)));
        Assert.Equal(10, cache.Snapshot.Count);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task The_file_stays_bounded_as_changes_go_on()
    {
        await using var store = await OpenAsync(keep: 200);
        var value = new string('x', 400);
        async Task WriteAsync(int from, int to)
        {
            for (var i = from; i < to; i++)
            {
                await store.PutAsync("service", $"default/s{i % 50}", $"{value}{i}");
            }
        }

        await WriteAsync(0, 1000);
        var after1000 = DbPages();
        await WriteAsync(1000, 5000);
        var after5000 = DbPages();

        // Unbounded, the log alone would be 5 times larger (about 2 MB); bounded, it stays at its first size.
        Assert.True(after5000 <= after1000 * 1.2, $"{after1000} pages after 1000 changes, {after5000} after 5000");
    }

    [Fact]
    public async Task Incremental_vacuum_returns_the_freed_pages_so_the_file_shrinks()
    {
        await using (var unbounded = await OpenAsync(keep: 0))
        {
            var value = new string('y', 1000);
            for (var i = 0; i < 2000; i++)
            {
                await unbounded.PutAsync("service", $"default/s{i % 10}", $"{value}{i}");
            }
        }

        var before = DbPages();
        await using var store = await OpenAsync(keep: 100);
        await store.PutAsync("service", "default/s0", "small"); // this write compacts 1900 revisions at once
        var after = DbPages();
        Assert.True(after < before / 4, $"{before} pages before compaction, {after} after");
    }

    [Fact]
    public async Task A_file_made_before_auto_vacuum_keeps_it_off_but_reuses_the_freed_pages()
    {
        using (var old = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={DbPath};Pooling=False"))
        {
            old.Open();
            using var cmd = old.CreateCommand();
            cmd.CommandText = "CREATE TABLE legacy (x INTEGER);"; // a table first: auto_vacuum can no longer change
            cmd.ExecuteNonQuery();
        }

        await using var store = await OpenAsync(keep: 100);
        Assert.Equal(0, Pragma("auto_vacuum"));
        var value = new string('z', 400);
        for (var i = 0; i < 500; i++)
        {
            await store.PutAsync("service", $"default/s{i % 10}", $"{value}{i}");
        }

        var after500 = DbPages();
        for (var i = 500; i < 3000; i++)
        {
            await store.PutAsync("service", $"default/s{i % 10}", $"{value}{i}");
        }

        Assert.True(DbPages() <= after500 * 1.2, $"{after500} pages after 500 changes, {DbPages()} after 3000");
    }

    /// <summary>The database's size in pages as SQLite sees it (the main file may lag behind until a checkpoint).</summary>
    private long DbPages() => Pragma("page_count");

    private long Pragma(string name)
    {
        using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={DbPath};Mode=ReadOnly;Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
#pragma warning disable CA2100 // the test's own constant pragma names
        cmd.CommandText = $"PRAGMA {name};";
#pragma warning restore CA2100
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static Node NodeNamed(string name, string iface) => new()
    {
        Name = name,
        UnderlayInterface = iface,
        UnderlayIp = IPAddress.Parse("192.168.56.11"),
    };

    private static async Task<List<StoreEvent>> TakeAsync(IAsyncEnumerable<StoreEvent> watch, int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var seen = new List<StoreEvent>();
        await foreach (var e in watch.WithCancellation(cts.Token))
        {
            seen.Add(e);
            if (seen.Count == count)
            {
                break;
            }
        }

        return seen;
    }
}
