using System.Net;
using Loom.Datapath.Services;

namespace Loom.Datapath.Tests;

/// <summary>kube-proxy's clusterCIDR on a node running several networks: one prefix holding every pool.</summary>
public sealed class ClusterCidrTests
{
    [Theory]
    [InlineData("10.244.0.0/16", "10.244.0.0/16")]
    [InlineData("10.244.0.0/16,10.245.0.0/16", "10.244.0.0/15")]
    [InlineData("10.245.0.0/16,10.244.0.0/16,10.244.0.0/16", "10.244.0.0/15")]
    [InlineData("10.244.0.0/16,10.246.0.0/16", "10.244.0.0/14")]
    [InlineData("10.0.0.0/16,192.168.0.0/16", "0.0.0.0/0")]
    public void The_smallest_prefix_holding_every_pool(string pools, string expected) =>
        Assert.Equal(IPNetwork.Parse(expected), ServiceProxyOptions.ClusterCidrOf([.. pools.Split(',').Select(IPNetwork.Parse)]));

    [Fact]
    public void No_pool_or_an_IPv6_one_is_refused()
    {
        Assert.Throws<ArgumentException>(() => ServiceProxyOptions.ClusterCidrOf([]));
        Assert.Throws<ArgumentException>(() => ServiceProxyOptions.ClusterCidrOf([IPNetwork.Parse("fd00::/64")]));
    }
}
