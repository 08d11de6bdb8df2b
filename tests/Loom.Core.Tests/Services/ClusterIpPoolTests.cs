using System.Net;
using Loom.Core.Services;

namespace Loom.Core.Tests.Services;

public sealed class ClusterIpPoolTests
{
    private static readonly ClusterIpAllocator Default = new(ClusterIpAllocator.DefaultServiceCidr);

    [Fact]
    public void The_pool_hands_out_what_the_allocator_would_one_after_another()
    {
        HashSet<IPAddress> used = [IPAddress.Parse("10.96.0.3"), IPAddress.Parse("10.96.0.5"), IPAddress.Parse("10.96.0.11")];
        var pool = new ClusterIpPool(Default, used);
        var expected = new HashSet<IPAddress>(used);
        for (var i = 0; i < 300; i++)
        {
            var want = Default.Allocate(expected);
            expected.Add(want);
            Assert.Equal(want, pool.Allocate());
        }

        Assert.Equal(303, pool.Count);
    }

    [Fact]
    public void A_request_is_checked_and_taken()
    {
        var pool = new ClusterIpPool(Default, [IPAddress.Parse("10.96.0.2")]);
        Assert.Equal(IPAddress.Parse("10.96.0.10"), pool.Allocate(IPAddress.Parse("10.96.0.10")));
        Assert.Equal(ClusterIpAllocationError.InUse, Assert.Throws<ClusterIpAllocationException>(() => pool.Allocate(IPAddress.Parse("10.96.0.10"))).Error);
        Assert.Equal(ClusterIpAllocationError.OutOfRange, Assert.Throws<ClusterIpAllocationException>(() => pool.Allocate(IPAddress.Parse("10.0.0.1"))).Error);
        Assert.Equal(IPAddress.Parse("10.96.0.3"), pool.Allocate());
    }

    [Fact]
    public void A_full_range_is_an_error()
    {
        var pool = new ClusterIpPool(new ClusterIpAllocator(IPNetwork.Parse("10.0.0.0/28")), []);
        // .2 to .14 without .10: 12 addresses.
        for (var i = 0; i < 12; i++)
        {
            pool.Allocate();
        }

        Assert.Equal(ClusterIpAllocationError.Exhausted, Assert.Throws<ClusterIpAllocationException>(() => pool.Allocate()).Error);
    }
}
