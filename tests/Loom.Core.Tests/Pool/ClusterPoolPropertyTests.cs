using System.Net;
using CsCheck;
using Loom.Core.Pool;
using Loom.Core.Store;

namespace Loom.Core.Tests.Pool;

public class ClusterPoolPropertyTests
{
    // Two small pools of 4 + 2 subnets, 8 nodes: sequences hit exhaustion and reuse often.
    private static readonly IPNetwork[] Pools = [IPNetwork.Parse("10.0.0.0/28"), IPNetwork.Parse("10.0.1.0/29")];

    [Fact]
    public async Task Any_allocate_release_sequence_keeps_cidrs_disjoint_and_stable()
    {
        var op = Gen.Select(Gen.Bool, Gen.Int[0, 7], Gen.Int[0, 1]);
        await op.Array[1, 40].SampleAsync(async ops =>
        {
            var store = MemoryStore.Create();
            IPodCidrAllocator[] allocators = [PodCidrAllocator.Create(store, Pools, 30), PodCidrAllocator.Create(store, Pools, 30)];
            var held = new Dictionary<string, IPNetwork>();
            foreach (var (allocate, n, which) in ops)
            {
                var node = $"n{n}";
                var allocator = allocators[which];
                if (allocate)
                {
                    try
                    {
                        var cidr = await allocator.AllocateAsync(node);
                        if (held.TryGetValue(node, out var before))
                        {
                            Assert.Equal(before, cidr);
                        }

                        held[node] = cidr;
                    }
                    catch (PodCidrPoolExhaustedException)
                    {
                        Assert.False(held.ContainsKey(node));
                        Assert.Equal(6, held.Count);
                    }
                }
                else
                {
                    Assert.Equal(held.Remove(node), await allocator.ReleaseAsync(node));
                }

                var claims = await allocators[0].ListAsync();
                Assert.Equal(held.Count, claims.Count);
                Assert.Equal(claims.Count, claims.Select(c => c.Node).Distinct().Count());
                for (var i = 0; i < claims.Count; i++)
                {
                    Assert.Contains(Pools, p => p.Contains(claims[i].Cidr.BaseAddress));
                    for (var j = i + 1; j < claims.Count; j++)
                    {
                        Assert.False(Subnets.Overlap(claims[i].Cidr, claims[j].Cidr), $"{claims[i]} overlaps {claims[j]}");
                    }
                }
            }
        }, iter: 300);
    }
}
