using System.Net;
using Loom.Core.Ipam;

namespace Loom.Core.Tests.Ipam;

public class IpRangeTests
{
    private static IpRange Range(string subnet, string? start = null, string? end = null, string? gw = null)
        => IpRange.Create(IPNetwork.Parse(subnet), Ip(start), Ip(end), Ip(gw));

    private static IPAddress? Ip(string? text) => text is null ? null : IPAddress.Parse(text);

    [Theory]
    [InlineData("10.0.0.0/30", "10.0.0.1", "10.0.0.2", 1)]
    [InlineData("10.0.0.0/29", "10.0.0.1", "10.0.0.6", 5)]
    [InlineData("10.0.0.0/24", "10.0.0.1", "10.0.0.254", 253)]
    [InlineData("10.0.0.0/8", "10.0.0.1", "10.255.255.254", 16777213)]
    [InlineData("fd00::/126", "fd00::1", "fd00::3", 2)]
    [InlineData("fd00::/120", "fd00::1", "fd00::ff", 254)]
    public void Defaults_and_capacity(string subnet, string start, string end, int capacity)
    {
        var range = Range(subnet);
        Assert.Equal(IPAddress.Parse(start), range.RangeStart);
        Assert.Equal(IPAddress.Parse(end), range.RangeEnd);
        Assert.Equal((UInt128)capacity, range.Capacity);
    }

    [Theory]
    [InlineData("10.244.2.0/24", "10.244.2.1")]
    [InlineData("10.244.0.0/16", "10.244.0.1")]
    [InlineData("10.0.0.0/8", "10.0.0.1")]
    [InlineData("fd00:1::/64", "fd00:1::1")]
    public void The_default_gateway_is_the_subnets_first_address_and_the_range_uses_it(string subnet, string gateway)
    {
        Assert.Equal(IPAddress.Parse(gateway), IpRange.DefaultGateway(IPNetwork.Parse(subnet)));
        Assert.Equal(IPAddress.Parse(gateway), Range(subnet).Gateway);
    }

    [Fact]
    public void V6_defaults_cover_the_whole_slash_64()
    {
        var range = Range("2001:db8:1:2::/64");
        Assert.Equal(IPAddress.Parse("2001:db8:1:2:ffff:ffff:ffff:ffff"), range.RangeEnd);
        Assert.Equal((UInt128)ulong.MaxValue - 1, range.Capacity); // minus network and gateway
    }

    [Fact]
    public void Reserved_addresses_are_network_broadcast_and_gateway()
    {
        var range = Range("10.0.0.0/24", start: "10.0.0.0", end: "10.0.0.255", gw: "10.0.0.10");
        Assert.True(range.IsReserved(IPAddress.Parse("10.0.0.0")));
        Assert.True(range.IsReserved(IPAddress.Parse("10.0.0.255")));
        Assert.True(range.IsReserved(IPAddress.Parse("10.0.0.10")));
        Assert.False(range.IsReserved(IPAddress.Parse("10.0.0.1")));
        Assert.Equal((UInt128)253, range.Capacity);

        var v6 = Range("fd00::/120", start: "fd00::", end: "fd00::ff");
        Assert.True(v6.IsReserved(IPAddress.Parse("fd00::")));
        Assert.False(v6.IsReserved(IPAddress.Parse("fd00::ff"))); // no broadcast in v6
    }

    [Fact]
    public void Contains_respects_start_and_end_and_family()
    {
        var range = Range("10.0.0.0/24", start: "10.0.0.10", end: "10.0.0.20");
        Assert.True(range.Contains(IPAddress.Parse("10.0.0.10")));
        Assert.True(range.Contains(IPAddress.Parse("10.0.0.20")));
        Assert.False(range.Contains(IPAddress.Parse("10.0.0.9")));
        Assert.False(range.Contains(IPAddress.Parse("10.0.0.21")));
        Assert.False(range.Contains(IPAddress.Parse("::ffff:10.0.0.15").MapToIPv6()));
    }

    [Theory]
    [InlineData("10.0.0.0/31")]
    [InlineData("10.0.0.0/32")]
    [InlineData("fd00::/127")]
    [InlineData("fd00::/128")]
    public void Point_to_point_subnets_are_too_small(string subnet)
    {
        var error = Assert.Throws<IpamConfigException>(() => Range(subnet));
        Assert.Equal("subnet", error.Key);
    }

    [Fact]
    public void Range_set_rejects_overlap_and_finds_ranges()
    {
        var a = Range("10.1.0.0/24");
        var b = Range("10.2.0.0/24");
        var set = RangeSet.Create([a, b]);
        Assert.Same(b, set.RangeFor(IPAddress.Parse("10.2.0.7")));
        Assert.Null(set.RangeFor(IPAddress.Parse("10.3.0.7")));
        Assert.Throws<IpamConfigException>(() => RangeSet.Create([a, Range("10.1.0.0/25")]));
        Assert.Throws<IpamConfigException>(() => RangeSet.Create([]));
    }

    [Theory]
    [InlineData("fd00::5", "fd00::5")]
    [InlineData("::102:304", "::102:304")]
    [InlineData("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1")]
    [InlineData("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1")]
    [InlineData("::", "::")]
    [InlineData("fd00::", "fd00::")]
    [InlineData("10.1.2.3", "10.1.2.3")]
    public void Addresses_are_formatted_like_go(string input, string expected)
        => Assert.Equal(expected, IpMath.Format(IPAddress.Parse(input)));

    [Fact]
    public void Value_round_trip_v4_and_v6()
    {
        foreach (var text in new[] { "0.0.0.0", "255.255.255.255", "10.1.2.3", "::", "fd00::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" })
        {
            var address = IPAddress.Parse(text);
            Assert.Equal(address, IpMath.FromValue(IpMath.ToValue(address), address.AddressFamily));
        }

        Assert.Equal(UInt128.MaxValue, IpMath.ToValue(IPAddress.Parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    }
}
