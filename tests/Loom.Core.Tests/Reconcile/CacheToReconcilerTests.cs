using Loom.Core.Model;
using Loom.Core.Reconcile;
using Loom.Core.Tests.Watch;
using Loom.Core.Watch;
using Microsoft.Extensions.Time.Testing;
using static Loom.Core.Tests.Watch.CacheHarness;

namespace Loom.Core.Tests.Reconcile;

/// <summary>
/// The composition the agent is meant to become: a controller subscribed to a cache turns changes into desired
/// rows, and a reconciler writes them. Through writes, a broken watch and a compaction, the target ends as the
/// projection of the store with no drift left for the full pass.
/// </summary>
public class CacheToReconcilerTests
{
    [Fact]
    public async Task A_controller_between_cache_and_reconciler_keeps_the_target_equal_to_the_store()
    {
        await using var h = new CacheHarness();
        var target = new TableTarget();
        var reconciler = new Reconciler<string, int>(target, new FakeTimeProvider(), new ReconcilerOptions { Name = "ip-count" });
        using var stop = new CancellationTokenSource();
        var run = reconciler.RunAsync(stop.Token);
        long seen = 0;

        // The controller: one row per endpoint on node n1, valued by its IP's last octet.
        using var controller = h.Cache.Subscribe((batch, ct) =>
        {
            foreach (var c in batch.Changes)
            {
                if (c.New is { Value.Node: "n1" } n)
                {
                    reconciler.Upsert(c.Key, n.Value.IPs[0].GetAddressBytes()[3]);
                }
                else
                {
                    reconciler.Delete(c.Key);
                }
            }

            Interlocked.Exchange(ref seen, batch.Revision);
            return Task.CompletedTask;
        });

        await h.PutAsync(Ep("a", "n1", "10.0.0.1"));
        await h.StartAsync();
        await h.WatchingAsync(1);
        await h.PutAsync(Ep("b", "n1", "10.0.0.2"));
        await h.PutAsync(Ep("c", "n2", "10.0.0.3"));
        h.Store.BreakWatches();
        await h.PutAsync(Ep("a", "n2", "10.0.0.1"));
        h.Store.FailWatches = true;
        h.Store.BreakWatches();
        await h.PutAsync(Ep("d", "n1", "10.0.0.4"));
        await h.DeleteAsync("default/b");
        await h.Store.CompactAsync(await h.Store.GetRevisionAsync());
        h.Store.FailWatches = false;
        var last = await h.PutAsync(Ep("e", "n1", "10.0.0.5"));

        await ObjectCacheTests.WaitUntil(() => Interlocked.Read(ref seen) >= last);
        await reconciler.WaitIdleAsync();

        Assert.Equal("default/d=4 default/e=5", target.Text);
        Assert.Equal(0, await reconciler.FullPassAsync());
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }
}
