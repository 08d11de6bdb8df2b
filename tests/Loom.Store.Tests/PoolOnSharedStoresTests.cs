using System.Net;
using Loom.Core.Pool;
using Loom.Core.Store;
using Loom.Store.Sqlite;

namespace Loom.Store.Tests;

/// <summary>Cluster-pool IPAM through real shared stores: two agents, each with its own store instance, allocating at once.</summary>
public sealed class PoolOnSharedStoresTests
{
    private static readonly IPNetwork[] Pool = [IPNetwork.Parse("10.244.0.0/16")];

    [Fact]
    public async Task Two_allocators_on_one_sqlite_file_give_twenty_nodes_distinct_cidrs()
    {
        var dir = Directory.CreateTempSubdirectory("loom-pool-").FullName;
        try
        {
            var path = Path.Combine(dir, "state.db");
            await using var a = await SqliteStore.OpenAsync(path);
            await using var b = await SqliteStore.OpenAsync(path);
            await AssertDistinctAsync(a, b);

            // Restart: a fresh instance gives every node its CIDR back.
            await using var c = await SqliteStore.OpenAsync(path);
            var allocator = PodCidrAllocator.Create(c, Pool, 24);
            foreach (var claim in await allocator.ListAsync())
            {
                Assert.Equal(claim.Cidr, await allocator.AllocateAsync(claim.Node));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Two_allocators_on_one_etcd_give_twenty_nodes_distinct_cidrs()
    {
        await using var server = await EtcdServer.StartAsync();
        await using var a = Etcd.EtcdStore.Connect(server.ClientUrl);
        await using var b = Etcd.EtcdStore.Connect(server.ClientUrl);
        await AssertDistinctAsync(a, b);
    }

    private static async Task AssertDistinctAsync(IStore a, IStore b)
    {
        var agents = new[] { PodCidrAllocator.Create(a, Pool, 24), PodCidrAllocator.Create(b, Pool, 24) };
        var allocations = await Task.WhenAll(
            from agent in Enumerable.Range(0, 2)
            from node in Enumerable.Range(0, 10)
            select Task.Run(() => agents[agent].AllocateAsync($"agent{agent}-node{node}")));

        Assert.Equal(20, allocations.Distinct().Count());
        var claims = await agents[0].ListAsync();
        Assert.Equal(20, claims.Count);
        Assert.Equal(20, claims.Select(c => c.Node).Distinct().Count());
        Assert.All(allocations, cidr => Assert.Equal(24, cidr.PrefixLength));
    }
}
