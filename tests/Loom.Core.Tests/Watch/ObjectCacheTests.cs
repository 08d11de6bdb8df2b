using Loom.Core.Reconcile;
using Loom.Core.Store;
using Loom.Core.Watch;
using static Loom.Core.Tests.Watch.CacheHarness;

namespace Loom.Core.Tests.Watch;

public class ObjectCacheTests
{
    [Fact]
    public async Task First_list_is_delivered_as_added_and_marks_synced()
    {
        await using var h = new CacheHarness();
        await h.PutAsync(Ep("b", "n1"));
        var rev = await h.PutAsync(Ep("a", "n2"));
        Assert.False(h.Cache.HasSynced);

        await h.StartAsync();
        await h.SettleAsync(rev);

        Assert.True(h.Cache.HasSynced);
        var batch = Assert.Single(h.Mirror.Batches);
        Assert.Equal(["default/a", "default/b"], batch.Changes.Select(c => c.Key));
        Assert.All(batch.Changes, c => Assert.Equal(ChangeType.Added, c.Type));
        Assert.Equal(rev, batch.Revision);
        Assert.Equal("n2", h.Cache.Get("default/a")!.Value.Node);
    }

    [Fact]
    public async Task Changes_arrive_in_order_with_old_and_new_values()
    {
        await using var h = new CacheHarness();
        await h.StartAsync();

        var added = await h.PutAsync(Ep("a", "n1", "10.0.0.1"));
        await h.SettleAsync(added);
        var updated = await h.PutAsync(Ep("a", "n1", "10.0.0.2"));
        await h.SettleAsync(updated);
        var deleted = await h.DeleteAsync("default/a");
        await h.SettleAsync(deleted);

        h.Mirror.AssertConsistent();
        var changes = h.Mirror.Changes;
        Assert.Equal([ChangeType.Added, ChangeType.Updated, ChangeType.Deleted], changes.Select(c => c.Type));
        Assert.Equal(added, changes[1].Old!.Revision);
        Assert.Equal("10.0.0.2", changes[1].New!.Value.IPs[0].ToString());
        Assert.Equal(updated, changes[2].Old!.Revision);
        Assert.Null(changes[2].New);
        Assert.Empty(h.Cache.Snapshot);
    }

    [Fact]
    public async Task A_busy_subscriber_gets_changes_coalesced_to_their_net_effect()
    {
        await using var h = new CacheHarness();
        await h.StartAsync();
        var release = new TaskCompletionSource();
        var batches = new List<ChangeBatch<Loom.Core.Model.Endpoint>>();
        using var sub = h.Cache.Subscribe(async (b, ct) =>
        {
            lock (batches)
            {
                batches.Add(b);
            }

            await release.Task;
        });

        var first = await h.PutAsync(Ep("a", "n1"));
        await h.Cache.WaitForRevisionAsync(first);
        await WaitUntil(() => batches.Count == 1);

        // While the subscriber is stuck in its first batch: a updated then deleted, b added then updated, c added then deleted.
        await h.PutAsync(Ep("a", "n2"));
        await h.PutAsync(Ep("b", "n1"));
        await h.PutAsync(Ep("c", "n1"));
        await h.DeleteAsync("default/a");
        await h.PutAsync(Ep("b", "n3"));
        var last = await h.DeleteAsync("default/c");
        await h.Cache.WaitForRevisionAsync(last);
        release.SetResult();
        await WaitUntil(() => batches.Count == 2);

        var second = batches[1];
        Assert.Equal(last, second.Revision);
        Assert.Collection(second.Changes,
            c => Assert.Equal((ChangeType.Deleted, "default/a", first), (c.Type, c.Key, c.Old!.Revision)),
            c => Assert.Equal((ChangeType.Added, "default/b", "n3"), (c.Type, c.Key, c.New!.Value.Node)));
    }

    [Fact]
    public async Task A_malformed_item_is_reported_and_skipped()
    {
        await using var h = new CacheHarness();
        await h.PutRawAsync("default/bad", "{not json");
        await h.PutAsync(Ep("good", "n1"));
        await h.StartAsync();

        var wrongKey = await h.PutRawAsync("default/other", """{"Namespace":"default","Name":"elsewhere","Node":"n1","ContainerId":"c"}""");
        await h.Cache.WaitForRevisionAsync(wrongKey);
        var ok = await h.PutAsync(Ep("good2", "n1"));
        await h.SettleAsync(ok);

        Assert.Equal(["default/good", "default/good2"], h.Cache.Snapshot.Keys.Order());
        var errors = h.Errors.ToList();
        Assert.Contains(errors, e => e.Kind == "endpoint" && e.Key == "default/bad" && e.Reason.StartsWith("cannot decode", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Key == "default/other" && e.Reason.Contains("'default/elsewhere'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_item_turning_malformed_is_deleted_from_the_cache()
    {
        await using var h = new CacheHarness();
        await h.StartAsync();
        await h.SettleAsync(await h.PutAsync(Ep("a", "n1")));
        await h.PutRawAsync("default/a", "[]");
        var rev = await h.PutAsync(Ep("b", "n1"));
        await h.SettleAsync(rev);

        Assert.Equal(["default/b"], h.Cache.Snapshot.Keys);
        Assert.Equal(["default/b"], h.Cache.ByIndex("node", "n1").Select(v => v.Key));
        Assert.Contains(h.Mirror.Changes, c => c is { Type: ChangeType.Deleted, Key: "default/a" });
        h.Mirror.AssertConsistent();
    }

    [Fact]
    public async Task A_broken_watch_resumes_from_the_last_revision_without_losing_or_repeating_changes()
    {
        await using var h = new CacheHarness();
        await h.StartAsync();
        await h.WatchingAsync(1);
        await h.PutAsync(Ep("a", "n1"));

        h.Store.BreakWatches();
        await h.PutAsync(Ep("b", "n1"));
        await h.PutAsync(Ep("a", "n2"));
        var rev = await h.DeleteAsync("default/b");
        await h.WatchingAsync(2);
        await h.SettleAsync(rev);

        h.Mirror.AssertConsistent();
        Assert.Contains(h.Errors, e => e.Reason.StartsWith("watch failed", StringComparison.Ordinal));
        var changes = h.Mirror.Changes;
        Assert.Equal(changes.Count, changes.Select(c => (c.Key, c.New?.Revision, c.Old?.Revision)).Distinct().Count());
        Assert.Equal(["default/a"], h.Cache.Snapshot.Keys);
        Assert.Equal("n2", h.Cache.Get("default/a")!.Value.Node);
    }

    [Fact]
    public async Task Compaction_relists_and_emits_the_difference_as_changes()
    {
        await using var h = new CacheHarness();
        await h.PutAsync(Ep("keep", "n1"));
        await h.PutAsync(Ep("gone", "n1"));
        await h.PutAsync(Ep("changed", "n1"));
        await h.StartAsync();
        await h.WatchingAsync(1);

        // Stop the cache from seeing the next writes live, then compact them away so it must re-list.
        h.Store.FailWatches = true;
        h.Store.BreakWatches();
        await h.DeleteAsync("default/gone");
        await h.PutAsync(Ep("changed", "n2"));
        var rev = await h.PutAsync(Ep("new", "n2"));
        await h.Store.CompactAsync(rev);
        var before = h.Mirror.Changes.Count;
        h.Store.FailWatches = false;
        await h.SettleAsync(rev);

        h.Mirror.AssertConsistent();
        Assert.Contains(h.Errors, e => e.Reason.Contains("compacted", StringComparison.Ordinal));
        var diff = h.Mirror.Changes.Skip(before).Select(c => (c.Type, c.Key)).ToList();
        Assert.Equal([(ChangeType.Updated, "default/changed"), (ChangeType.Deleted, "default/gone"), (ChangeType.Added, "default/new")], diff);
        Assert.Equal(["default/changed", "default/new"], h.Cache.ByIndex("node", "n2").Select(v => v.Key));
        Assert.Equal(["default/keep"], h.Cache.ByIndex("node", "n1").Select(v => v.Key));
    }

    [Fact]
    public async Task Indexes_follow_updates_and_deletes()
    {
        await using var h = new CacheHarness();
        await h.StartAsync();
        await h.PutAsync(Ep("a", "n1"));
        await h.PutAsync(Ep("b", "n1"));
        await h.PutAsync(Ep("a", "n2"));
        var rev = await h.DeleteAsync("default/b");
        await h.SettleAsync(rev);

        Assert.Empty(h.Cache.ByIndex("node", "n1"));
        Assert.Equal(["default/a"], h.Cache.ByIndex("node", "n2").Select(v => v.Key));

        // An index added late is built from the current table.
        h.Cache.AddIndex("ip", e => e.IPs.Select(ip => ip.ToString()));
        Assert.Equal(["default/a"], h.Cache.ByIndex("ip", "10.0.0.1").Select(v => v.Key));
        Assert.Throws<ArgumentException>(() => h.Cache.ByIndex("nope", "x"));
        Assert.Throws<ArgumentException>(() => h.Cache.AddIndex("node", e => [e.Node]));
    }

    [Fact]
    public async Task A_store_that_keeps_failing_is_retried_with_exponential_backoff()
    {
        await using var h = new CacheHarness(new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(400)));
        h.Store.FailWatches = true;
        await h.StartAsync();

        // Each report is made after its timer started, so moving the clock by exactly the delay releases the next try.
        string[] expected = ["100", "200", "400", "400"];
        for (var i = 0; i < expected.Length; i++)
        {
            await WaitUntil(() => h.Errors.Count > i);
            var reason = h.Errors.ElementAt(i).Reason;
            Assert.StartsWith($"watch failed, retrying in {expected[i]} ms", reason, StringComparison.Ordinal);
            h.Time.Advance(TimeSpan.FromMilliseconds(int.Parse(expected[i], System.Globalization.CultureInfo.InvariantCulture) - 1));
            await Task.Yield();
            Assert.Equal(i + 1, h.Errors.Count);
            h.Store.FailWatches = i < expected.Length - 1;
            h.Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var rev = await h.PutAsync(Ep("a", "n1"));
        await h.SettleAsync(rev);
    }

    [Fact]
    public async Task A_subscriber_that_throws_is_reported_and_still_gets_later_changes()
    {
        await using var h = new CacheHarness();
        await h.StartAsync();
        var seen = new List<string>();
        using var sub = h.Cache.Subscribe((b, ct) =>
        {
            lock (seen)
            {
                seen.AddRange(b.Changes.Select(c => c.Key));
            }

            return b.Changes.Any(c => c.Key == "default/boom") ? throw new InvalidOperationException("boom") : Task.CompletedTask;
        });
        await h.PutAsync(Ep("boom", "n1"));
        await WaitUntil(() => h.Errors.Any(e => e.Reason.Contains("boom", StringComparison.Ordinal)));
        await h.PutAsync(Ep("after", "n1"));
        await WaitUntil(() =>
        {
            lock (seen)
            {
                return seen.Contains("default/after");
            }
        });
    }

    [Fact]
    public async Task A_cache_runs_once()
    {
        await using var h = new CacheHarness();
        await h.StartAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => h.Cache.RunAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Synced_is_cancelled_when_stopped_before_the_first_list()
    {
        var store = new FlakyStore(MemoryStore.Create());
        var cache = new ObjectCache<Loom.Core.Model.Endpoint>(store, Kinds.Endpoint, TimeProvider.System, _ => { });
        using var stop = new CancellationTokenSource();
        await stop.CancelAsync();
        await cache.RunAsync(stop.Token);
        Assert.True(cache.Synced.IsCanceled);
        Assert.False(cache.HasSynced);
    }

    internal static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in 10 s");
            await Task.Delay(TimeSpan.FromMilliseconds(1), TimeProvider.System);
        }
    }
}
