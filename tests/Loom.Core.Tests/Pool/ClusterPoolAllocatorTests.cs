using System.Net;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;

namespace Loom.Core.Tests.Pool;

public class ClusterPoolAllocatorTests
{
    private static readonly IPNetwork DefaultPool = IPNetwork.Parse("10.244.0.0/16");

    [Fact]
    public async Task Nodes_get_consecutive_slash_24s_from_the_default_pool()
    {
        var allocator = PodCidrAllocator.Create(MemoryStore.Create(), new ClusterConfig());
        Assert.Equal(IPNetwork.Parse("10.244.0.0/24"), await allocator.AllocateAsync("n1"));
        Assert.Equal(IPNetwork.Parse("10.244.1.0/24"), await allocator.AllocateAsync("n2"));
        Assert.Equal(IPNetwork.Parse("10.244.2.0/24"), await allocator.AllocateAsync("n3"));
    }

    [Fact]
    public async Task A_node_gets_the_same_cidr_again_after_a_restart()
    {
        var store = MemoryStore.Create();
        var first = await PodCidrAllocator.Create(store, [DefaultPool], 24).AllocateAsync("n1");
        await PodCidrAllocator.Create(store, [DefaultPool], 24).AllocateAsync("n2");

        var restarted = PodCidrAllocator.Create(store, [DefaultPool], 24);
        Assert.Equal(first, await restarted.AllocateAsync("n1"));
        Assert.Equal(first, await restarted.GetAsync("n1"));
        Assert.Equal(2, (await restarted.ListAsync()).Count);
    }

    [Fact]
    public async Task Released_cidrs_are_reused()
    {
        var allocator = PodCidrAllocator.Create(MemoryStore.Create(), [DefaultPool], 24);
        var a = await allocator.AllocateAsync("a");
        await allocator.AllocateAsync("b");
        Assert.True(await allocator.ReleaseAsync("a"));
        Assert.False(await allocator.ReleaseAsync("a"));
        Assert.Null(await allocator.GetAsync("a"));
        Assert.Equal(a, await allocator.AllocateAsync("c"));
    }

    [Fact]
    public async Task Exhaustion_names_the_pool()
    {
        var allocator = PodCidrAllocator.Create(MemoryStore.Create(), [IPNetwork.Parse("10.9.0.0/23")], 24);
        await allocator.AllocateAsync("a");
        await allocator.AllocateAsync("b");
        var e = await Assert.ThrowsAsync<PodCidrPoolExhaustedException>(() => allocator.AllocateAsync("c"));
        Assert.Contains("10.9.0.0/23", e.Message, StringComparison.Ordinal);
        Assert.Contains("node c", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Later_pools_are_used_when_earlier_ones_are_full()
    {
        var allocator = PodCidrAllocator.Create(MemoryStore.Create(),
            [IPNetwork.Parse("10.1.0.0/24"), IPNetwork.Parse("10.2.0.0/16")], 24);
        Assert.Equal(IPNetwork.Parse("10.1.0.0/24"), await allocator.AllocateAsync("a"));
        Assert.Equal(IPNetwork.Parse("10.2.0.0/24"), await allocator.AllocateAsync("b"));
    }

    [Fact]
    public async Task Ipv6_pools_and_other_mask_sizes_work()
    {
        var allocator = PodCidrAllocator.Create(MemoryStore.Create(), [IPNetwork.Parse("fd00:10:244::/56")], 64);
        Assert.Equal(IPNetwork.Parse("fd00:10:244::/64"), await allocator.AllocateAsync("a"));
        Assert.Equal(IPNetwork.Parse("fd00:10:244:1::/64"), await allocator.AllocateAsync("b"));

        var v4 = PodCidrAllocator.Create(MemoryStore.Create(), [IPNetwork.Parse("10.244.0.0/16")], 26);
        await v4.AllocateAsync("a");
        Assert.Equal(IPNetwork.Parse("10.244.0.64/26"), await v4.AllocateAsync("b"));
    }

    [Fact]
    public void A_mask_that_does_not_fit_the_pool_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PodCidrAllocator.Create(MemoryStore.Create(), [DefaultPool], 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => PodCidrAllocator.Create(MemoryStore.Create(), [DefaultPool], 33));
        Assert.Throws<ArgumentException>(() => PodCidrAllocator.Create(MemoryStore.Create(), [], 24));
    }

    [Fact]
    public async Task Claims_of_removed_nodes_are_released_as_orphans()
    {
        var store = MemoryStore.Create();
        var allocator = PodCidrAllocator.Create(store, [DefaultPool], 24);
        foreach (var name in new[] { "alive", "gone" })
        {
            await store.PutAsync(Kinds.Node, new Node { Name = name, UnderlayInterface = "eth1", UnderlayIp = IPAddress.Loopback });
            await allocator.AllocateAsync(name);
        }

        await store.DeleteAsync(Kinds.Node, "gone");
        Assert.Equal(1, await allocator.ReleaseOrphansAsync());
        Assert.Equal(["alive"], (await allocator.ListAsync()).Select(c => c.Node));
    }

    [Fact]
    public async Task A_cidr_claimed_by_someone_else_meanwhile_is_skipped()
    {
        var store = MemoryStore.Create();
        // Another agent claimed the first subnet directly, as a racing allocator would.
        await store.PutAsync(Kinds.PodCidr, new PodCidrClaim(IPNetwork.Parse("10.244.0.0/24"), "other"), expectedRevision: 0);
        var allocator = PodCidrAllocator.Create(store, [DefaultPool], 24);
        Assert.Equal(IPNetwork.Parse("10.244.1.0/24"), await allocator.AllocateAsync("n1"));
    }

    [Fact]
    public async Task Concurrent_allocators_never_hand_out_the_same_cidr()
    {
        var store = MemoryStore.Create();
        var a = PodCidrAllocator.Create(store, [DefaultPool], 24);
        var b = PodCidrAllocator.Create(store, [DefaultPool], 24);
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Task.Run(() => (i % 2 == 0 ? a : b).AllocateAsync($"n{i}"))));
        Assert.Equal(20, results.Distinct().Count());
    }

    [Fact]
    public async Task The_same_node_allocating_twice_concurrently_ends_up_with_one_cidr()
    {
        var store = MemoryStore.Create();
        var a = PodCidrAllocator.Create(store, [DefaultPool], 24);
        var b = PodCidrAllocator.Create(store, [DefaultPool], 24);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => (i % 2 == 0 ? a : b).AllocateAsync("same"))));
        var final = await a.GetAsync("same");
        Assert.Single(await a.ListAsync());
        Assert.Equal(final, await a.AllocateAsync("same"));
        Assert.Contains(final!.Value, results);
    }
}
