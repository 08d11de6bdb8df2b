using System.Collections.Concurrent;
using Loom.Core.Policy;
using Loom.Core.Store;

namespace Loom.Core.Tests.Policy;

/// <summary>
/// Nodes acquiring, checking, releasing random label sets from a small pool at once (and, with collect, collecting at
/// once too). While a node holds a number, the set's binding must name that number and the number's record that set;
/// without collection every acquire of a set must give one number for the whole run.
/// </summary>
public static class IdentityRace
{
    private static readonly SecurityLabels[] Sets =
    [
        .. from ns in new[] { "a", "b" }
           from app in new[] { "web", "db", "cache" }
           select SecurityLabels.Of(ns, new Dictionary<string, string> { ["app"] = app }, new Dictionary<string, string>()),
    ];

    public static async Task RunAsync(IReadOnlyList<IStore> stores, int nodes, int rounds, bool collect)
    {
        try
        {
            var seen = new ConcurrentDictionary<string, ConcurrentBag<uint>>();
            using var stop = new CancellationTokenSource();
            var collector = collect
                ? Task.Run(async () =>
                {
                    var gc = new IdentityAllocator(stores[0], "collector");
                    while (!stop.IsCancellationRequested)
                    {
                        await gc.CollectGarbageAsync(TimeSpan.Zero);
                    }
                })
                : Task.CompletedTask;
            await Task.WhenAll(Enumerable.Range(0, nodes).Select(n => Task.Run(async () =>
            {
                var store = stores[n % stores.Count];
                var allocator = new IdentityAllocator(store, $"node{n}");
                var random = new Random(n);
                for (var i = 0; i < rounds; i++)
                {
                    var labels = Sets[random.Next(Sets.Length)];
                    var identity = await allocator.AcquireAsync(labels);
                    seen.GetOrAdd(labels.Canonical, _ => []).Add(identity.Id);
                    await AssertHeldAsync(store, labels, identity.Id);
                    await Task.Yield();
                    await AssertHeldAsync(store, labels, identity.Id);
                    if (collect)
                    {
                        await allocator.ReleaseAsync(identity.Id);
                    }
                }
            })));
            await stop.CancelAsync();
            await collector;
            if (!collect)
            {
                Assert.All(seen.Values, ids => Assert.Single(ids.Distinct()));
                Assert.Equal(seen.Count, seen.Values.Select(ids => ids.First()).Distinct().Count());
            }
            else
            {
                // Everything released: one more pass leaves nothing behind.
                await new IdentityAllocator(stores[0], "collector").CollectGarbageAsync(TimeSpan.Zero);
                Assert.Empty((await stores[0].ListAsync(Kinds.Identity)).Items);
                Assert.Empty((await stores[0].ListAsync(Kinds.IdentityKey)).Items);
                Assert.Empty((await stores[0].ListAsync(Kinds.IdentityRef)).Items);
            }
        }
        finally
        {
            foreach (var s in stores)
            {
                await s.DisposeAsync();
            }
        }
    }

    private static async Task AssertHeldAsync(IStore store, SecurityLabels labels, uint id)
    {
        var key = await store.GetAsync(Kinds.IdentityKey, labels.Hash());
        Assert.True(key is not null && key.Value.Id == id, $"{labels} held as {id} but bound to {key?.Value.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nothing"}");
        var record = await store.GetAsync(Kinds.Identity, SecurityIdentity.KeyOf(id));
        Assert.True(record is not null && SecurityLabels.FromLabels(record.Value.Labels).Equals(labels), $"{id} held for {labels} but is {record?.Value.Labels.Count}");
    }
}
