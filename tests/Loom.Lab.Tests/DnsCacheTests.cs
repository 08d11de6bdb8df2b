using System.Net;
using System.Runtime.CompilerServices;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Testing;
using Loom.Workloads;

namespace Loom.Lab.Tests;

/// <summary>The cluster DNS's cache: listed once, kept current by the watch, listed again after a compaction.</summary>
public sealed class DnsCacheTests
{
    private const string Name = "webpod.default.svc.cluster.local.";

    [Fact]
    public async Task Names_follow_services_added_and_removed_without_a_listing_per_query()
    {
        await using var store = new CountingStore(MemoryStore.Create());
        await store.PutAsync(Kinds.Service, Svc("other", "10.96.0.9"));
        await using var cache = ClusterDnsCache.Start(store);

        Assert.True(await ResolvesTo(cache, null)); // NXDOMAIN
        await store.PutAsync(Kinds.Service, Svc("webpod", "10.96.0.2"));
        Assert.True(await Eventually(() => ResolvesTo(cache, "10.96.0.2")));
        await store.PutAsync(Kinds.Service, Svc("webpod", "10.96.0.5")); // ClusterIP changed
        Assert.True(await Eventually(() => ResolvesTo(cache, "10.96.0.5")));
        await store.DeleteAsync(Kinds.Service, ObjectKey.Of("default", "webpod"));
        Assert.True(await Eventually(async () => !(await cache.ViewAsync()).Services.Any(s => s.Name == "webpod")));
        Assert.True(await ResolvesTo(cache, null)); // NXDOMAIN

        for (var i = 0; i < 20; i++)
        {
            _ = ClusterDnsResolver.Resolve(Name, await cache.ViewAsync(), "default");
        }

        Assert.Equal(2, store.Lists); // one per kind, however many queries
    }

    [Fact]
    public async Task A_compacted_watch_lists_again_and_catches_up()
    {
        await using var store = new CountingStore(MemoryStore.Create()) { CompactFirstWatches = 2 };
        await store.PutAsync(Kinds.Service, Svc("webpod", "10.96.0.2"));
        await using var cache = ClusterDnsCache.Start(store);
        Assert.True(await Eventually(() => Task.FromResult(store.Lists >= 4)));
        await store.PutAsync(Kinds.Service, Svc("webpod", "10.96.0.7"));
        Assert.True(await Eventually(() => ResolvesTo(cache, "10.96.0.7")));
    }

    private static Service Svc(string name, string ip) => new() { Namespace = "default", Name = name, ClusterIp = IPAddress.Parse(ip) };

    private static async Task<bool> ResolvesTo(ClusterDnsCache cache, string? ip)
    {
        var answer = ClusterDnsResolver.Resolve(Name, await cache.ViewAsync(), "default");
        return ip is null ? !answer.Exists : answer.Exists && answer.Addresses.SequenceEqual([IPAddress.Parse(ip)]);
    }

    private static async Task<bool> Eventually(Func<Task<bool>> check)
    {
        for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10); DateTime.UtcNow < deadline; await Task.Delay(20))
        {
            if (await check())
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Counts listings; can fail the first watches as compacted, as a store that compacted meanwhile would.</summary>
    private sealed class CountingStore(IStore inner) : DelegatingStore(inner)
    {
        private int _lists;
        private int _watches;

        public int Lists => Volatile.Read(ref _lists);

        public int CompactFirstWatches { get; init; }

        public override Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _lists);
            return Inner.ListAsync(kind, cancellationToken);
        }

        public override async IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            if (Interlocked.Increment(ref _watches) <= CompactFirstWatches)
            {
                throw new StoreCompactedException(fromRevision, fromRevision + 1);
            }

            await foreach (var e in Inner.WatchAsync(kind, fromRevision, cancellationToken))
            {
                yield return e;
            }
        }
    }
}
