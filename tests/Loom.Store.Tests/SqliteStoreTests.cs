using System.Diagnostics;
using Loom.Core.Store;
using Loom.Store.Sqlite;

namespace Loom.Store.Tests;

/// <summary>
/// Two store instances on one file, as two node agents on one machine would have. The safety poll is an hour, so every
/// watch test here passes only if the file's inotify events (another instance's writes) and the lease-expiry timer
/// wake the watches.
/// </summary>
public sealed class SqliteStoreTests : StoreContractTests
{
    private static readonly TimeSpan NoPoll = TimeSpan.FromHours(1);

    private readonly string _dir = Directory.CreateTempSubdirectory("loom-store-").FullName;

    private string DbPath => Path.Combine(_dir, "state.db");

    protected override Task<IStore> OpenAsync() => SqliteStore.OpenAsync(DbPath, new SqliteStoreOptions { PollInterval = NoPoll });

    protected override Task CleanupAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task State_survives_reopening_the_file()
    {
        var put = await A.PutAsync("node", "n1", "{}");
        await using var reopened = await OpenAsync();
        Assert.Equal(put.Revision, (await reopened.GetAsync("node", "n1"))!.ModRevision);
        Assert.Equal(put.Revision, await reopened.GetRevisionAsync());
    }

    [Fact]
    public async Task A_write_through_another_instance_wakes_a_watch_at_once()
    {
        var start = await A.GetRevisionAsync();
        using var cts = new CancellationTokenSource(EventTimeout);
        await using var events = A.WatchAsync("node", start, cts.Token).GetAsyncEnumerator(cts.Token);
        var first = events.MoveNextAsync().AsTask();
        await Task.Delay(300); // the watch has read once and waits
        var clock = Stopwatch.StartNew();
        var put = await B.PutAsync("node", "n1", "{}");
        Assert.True(await first);
        Assert.Equal(put.Revision, events.Current.Revision);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"the watch saw the write after {clock.Elapsed} (safety poll {NoPoll})");
    }

    [Fact]
    public async Task An_idle_watch_does_not_poll()
    {
        var (reads, checks) = await WhileWatchingAsync(() => Task.Delay(TimeSpan.FromSeconds(1)));
        // The 50 ms poll this replaced read 20 times a second.
        Assert.True(reads <= 1 && checks <= 1, $"{reads} reads of the change log, {checks} of the revision in 1 s with nothing written");
    }

    [Fact]
    public async Task Lease_keep_alives_from_another_instance_do_not_wake_the_watches()
    {
        var lease = await B.GrantLeaseAsync(TimeSpan.FromMinutes(1));
        var (reads, checks) = await WhileWatchingAsync(async () =>
        {
            for (var i = 0; i < 5; i++)
            {
                Assert.True(await B.KeepAliveAsync(lease));
                await Task.Delay(100);
            }
        });

        // Each keep-alive writes the file (a file event: one read of the revision), but no revision: no watch reads.
        Assert.True(reads <= 1, $"{reads} reads of the change log for 5 keep-alives");
        Assert.True(checks >= 1, "no file event reached the store");
    }

    [Fact]
    public async Task A_file_event_that_shows_nothing_new_is_looked_at_again_later()
    {
        // A writer descheduled between its -wal write and its commit must not leave the watches to the 10 s safety
        // poll: the check after the event, then 20 ms and 250 ms later while nothing moved.
        var lease = await B.GrantLeaseAsync(TimeSpan.FromMinutes(1));
        var notifier = ((SqliteStoreImpl)A).Notifier;
        long checks = 0;
        await WhileWatchingAsync(async () =>
        {
            // The first check after the start learns the revision (it moved, from nothing): no later look.
            Assert.True(await B.KeepAliveAsync(lease));
            await Task.Delay(500);
            var before = notifier.Checks;
            Assert.True(await B.KeepAliveAsync(lease));
            await Task.Delay(800);
            checks = notifier.Checks - before;
        });
        Assert.True(checks >= 3, $"{checks} checks of the revision after one keep-alive (want the event's, +20 ms, +250 ms)");
    }

    /// <summary>Runs <paramref name="body"/> while a watch on A waits; returns A's change-log reads and revision checks meanwhile.</summary>
    private async Task<(long Reads, long Checks)> WhileWatchingAsync(Func<Task> body)
    {
        var store = (SqliteStoreImpl)A;
        var start = await A.GetRevisionAsync();
        using var cts = new CancellationTokenSource();
        var watching = Task.Run(async () =>
        {
            await foreach (var _ in A.WatchAsync(null, start, cts.Token))
            {
            }
        });

        await Task.Delay(300);
        var (reads, checks) = (store.WatchReads, store.Notifier.Checks);
        await body();
        var after = (store.WatchReads - reads, store.Notifier.Checks - checks);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watching);
        Assert.True(reads >= 1, "the watch never read");
        return after;
    }
}
