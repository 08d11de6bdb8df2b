using System.Diagnostics;
using Loom.Core.Store;
using Loom.Store.Sqlite;
using Microsoft.Data.Sqlite;

namespace Loom.Agent.Tests;

/// <summary>
/// The agent's store health (<see cref="StoreHealth"/> fed by <see cref="GuardedStore"/>): a frozen etcd (calls that never
/// answer), a locked SQLite file (writes that wait for the lock), and the watches across both.
/// </summary>
public sealed class StoreHealthTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMilliseconds(300);

    [Fact]
    public async Task A_frozen_store_is_unreachable_from_the_first_call_past_its_deadline_until_one_answers()
    {
        await using var frozen = new FrozenStore(MemoryStore.Create());
        using var health = new StoreHealth();
        var store = new GuardedStore(frozen, health, Deadline);
        await store.PutAsync("service", "default/web", "{}");
        Assert.True(health.IsReachable);
        var recovered = health.Recovered;

        frozen.Frozen = true;
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<TimeoutException>(() => store.GetAsync("service", "default/web"));
        Assert.InRange(clock.Elapsed, Deadline * 0.9, Deadline * 5); // not forever
        Assert.Contains("did not answer (get service/default/web) within 0.3 s", e.Message, StringComparison.Ordinal);
        var outage = Assert.NotNull(health.Outage);
        Assert.Contains("TimeoutException", outage.Reason, StringComparison.Ordinal);
        await Assert.ThrowsAsync<TimeoutException>(() => store.ListAsync("service"));
        Assert.Equal(outage.Since, health.Outage?.Since); // since the first failure
        Assert.False(recovered.IsCompleted);
        recovered = health.Recovered;

        frozen.Frozen = false;
        Assert.NotNull(await store.GetAsync("service", "default/web"));
        Assert.True(health.IsReachable);
        Assert.Null(health.Outage);
        await recovered.WaitAsync(TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task A_store_answering_with_an_error_is_still_reachable()
    {
        await using var inner = MemoryStore.Create();
        using var health = new StoreHealth();
        var store = new GuardedStore(inner, health, Deadline);
        await store.PutAsync("service", "default/web", "{}");
        await store.CompactAsync(await store.GetRevisionAsync());
        await Assert.ThrowsAsync<StoreCompactedException>(async () =>
        {
            await foreach (var e in store.WatchAsync("service", 0))
            {
            }
        });
        Assert.False((await store.PutAsync("service", "default/web", "{}", expectedRevision: 0)).Succeeded);
        Assert.True(health.IsReachable);
    }

    [Fact]
    public void Transport_and_lock_failures_are_outages_and_answers_are_not()
    {
        Assert.True(StoreHealth.IsOutage(new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.Unavailable, "connection refused"))));
        Assert.True(StoreHealth.IsOutage(new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.DeadlineExceeded, "slow"))));
        Assert.True(StoreHealth.IsOutage(new SqliteException("database is locked", 5)));
        Assert.True(StoreHealth.IsOutage(new SqliteException("disk I/O error", 10)));
        Assert.True(StoreHealth.IsOutage(new SqliteException("file is not a database", 26)));
        Assert.True(StoreHealth.IsOutage(new TimeoutException()));
        Assert.False(StoreHealth.IsOutage(new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.InvalidArgument, "bad key"))));
        Assert.False(StoreHealth.IsOutage(new SqliteException("constraint failed", 19)));
        Assert.False(StoreHealth.IsOutage(new StoreCompactedException(1, 2)));
        Assert.False(StoreHealth.IsOutage(new InvalidOperationException("lease 7 not found")));
    }

    [Fact]
    public async Task A_locked_sqlite_file_fails_writes_at_the_deadline_and_reads_do_not_end_the_outage()
    {
        var dir = Directory.CreateTempSubdirectory("loom-store-health-");
        try
        {
            var db = Path.Combine(dir.FullName, "state.db");
            await using var sqlite = await SqliteStore.OpenAsync(db);
            using var health = new StoreHealth();
            var store = new GuardedStore(sqlite, health, Deadline);
            await store.PutAsync("service", "default/web", "{}");

            await using (var locker = new SqliteConnection($"Data Source={db}"))
            {
                await locker.OpenAsync();
                await using (var begin = locker.CreateCommand())
                {
                    begin.CommandText = "BEGIN EXCLUSIVE";
                    await begin.ExecuteNonQueryAsync();
                }

                // The busy timeout is 10 s; the deadline ends the wait long before.
                var clock = Stopwatch.StartNew();
                await Assert.ThrowsAsync<TimeoutException>(() => store.PutAsync("service", "default/api", "{}"));
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
                Assert.False(health.IsReachable);

                // WAL: reads still work, but the store cannot take a write, so it stays unreachable.
                Assert.NotNull(await store.GetAsync("service", "default/web"));
                Assert.False(health.IsReachable);

                await using var rollback = locker.CreateCommand();
                rollback.CommandText = "ROLLBACK";
                await rollback.ExecuteNonQueryAsync();
            }

            Assert.True((await store.PutAsync("service", "default/api", "{}")).Succeeded);
            Assert.True(health.IsReachable);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_put_that_must_not_outlive_its_failure_is_undone_when_it_lands_after_its_deadline()
    {
        await using var inner = MemoryStore.Create();
        await using var frozen = new FrozenStore(inner) { WritesLandLate = true };
        using var health = new StoreHealth();
        var store = new GuardedStore(frozen, health, Deadline);
        frozen.Frozen = true;
        await Assert.ThrowsAsync<TimeoutException>(() => store.PutOrUndoAsync("endpoint", "default/web-1", "{}"));
        await Assert.ThrowsAsync<TimeoutException>(() => store.PutAsync("endpoint", "default/web-2", "{}"));
        frozen.Frozen = false; // both writes land now

        // Three writes: web-1 and web-2 put, web-1 deleted again.
        await WaitForAsync(() => inner.GetRevisionAsync().GetAwaiter().GetResult() >= 3);
        Assert.Equal(["default/web-2"], (await inner.ListAsync("endpoint")).Items.Select(i => i.Key));
    }

    [Fact]
    public async Task A_watch_on_a_frozen_store_is_reopened_from_its_revision_as_soon_as_the_store_is_back()
    {
        await using var inner = MemoryStore.Create();
        await using var frozen = new FrozenStore(inner);
        using var health = new StoreHealth();
        var store = new GuardedStore(frozen, health, Deadline);
        var log = new LogCapture();
        // A first retry of 30 s: only the store's return can wake the watch in time.
        var loops = new AgentLoops(store, log) { RetryFirst = TimeSpan.FromSeconds(30), RetryCap = TimeSpan.FromSeconds(30), StoreHealth = health };
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var signal = new SemaphoreSlim(0);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var watch = loops.WatchAsync("service", await store.GetRevisionAsync(), e =>
        {
            seen.Enqueue(e.Key);
            return true;
        }, signal, "services", cts.Token);

        await store.PutAsync("service", "default/web", "{}");
        await WaitForAsync(() => seen.Contains("default/web"));

        frozen.Frozen = true;
        await Assert.ThrowsAsync<TimeoutException>(() => store.GetRevisionAsync()); // the probe's read: the watch is reopened
        await inner.PutAsync("service", "default/api", "{}"); // written meanwhile (by another node)

        frozen.Frozen = false;
        var back = Stopwatch.StartNew();
        await store.GetRevisionAsync();
        await WaitForAsync(() => seen.Contains("default/api"));
        Assert.True(back.Elapsed < TimeSpan.FromSeconds(5), $"took {back.Elapsed}");
        Assert.DoesNotContain("watch failed", log.Text, StringComparison.Ordinal); // the watcher saw no error, so no backoff
        Assert.False(watch.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watch);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in 10 s");
            await Task.Delay(20);
        }
    }
}
