using System.Net;
using Loom.Core.Ipam;

namespace Loom.Core.Tests.Ipam;

public class IpamConfigTests
{
    [Fact]
    public void Nested_ranges_get_host_local_defaults()
    {
        var config = Configs.Parse("""
            {"type":"loom","ranges":[[{"subnet":"10.1.0.0/24"}],[{"subnet":"fd00::/64"}]],
             "routes":[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"10.1.0.254"}]}
            """);

        Assert.Equal("testnet", config.NetworkName);
        Assert.Equal(IpamConfig.DefaultDataDir, config.DataDir);
        Assert.Equal("/var/lib/cni/networks/testnet", config.NetworkDirectory);
        var v4 = config.RangeSets[0].Ranges[0];
        Assert.Equal(IPAddress.Parse("10.1.0.1"), v4.RangeStart);
        Assert.Equal(IPAddress.Parse("10.1.0.254"), v4.RangeEnd);
        Assert.Equal(IPAddress.Parse("10.1.0.1"), v4.Gateway);
        var v6 = config.RangeSets[1].Ranges[0];
        Assert.Equal(IPAddress.Parse("fd00::1"), v6.RangeStart);
        Assert.Equal(IPAddress.Parse("fd00::ffff:ffff:ffff:ffff"), v6.RangeEnd);
        Assert.Equal(IPAddress.Parse("fd00::1"), v6.Gateway);
        Assert.Equal(2, config.Routes.Count);
        Assert.Null(config.Routes[0].Gateway);
        Assert.Equal(IPAddress.Parse("10.1.0.254"), config.Routes[1].Gateway);
        Assert.Equal(IPNetwork.Parse("192.168.0.0/16"), config.Routes[1].Destination);
    }

    [Fact]
    public void Explicit_range_fields_are_kept()
    {
        var config = Configs.Parse("""
            {"ranges":[[{"subnet":"10.1.0.0/16","rangeStart":"10.1.5.10","rangeEnd":"10.1.5.20","gateway":"10.1.0.254"}]],
             "dataDir":"/tmp/x"}
            """);
        var range = config.RangeSets[0].Ranges[0];
        Assert.Equal("10.1.5.10-10.1.5.20", range.ToString());
        Assert.Equal(IPAddress.Parse("10.1.0.254"), range.Gateway);
        Assert.Equal("/tmp/x", config.DataDir);
    }

    [Fact]
    public void Legacy_flat_form_becomes_first_range_set()
    {
        var config = Configs.Parse("""
            {"subnet":"10.2.0.0/24","rangeStart":"10.2.0.100","gateway":"10.2.0.1",
             "ranges":[[{"subnet":"fd00::/120"}]]}
            """);
        Assert.Equal(2, config.RangeSets.Count);
        Assert.Equal("10.2.0.100-10.2.0.254", config.RangeSets[0].ToString());
        Assert.Equal("fd00::1-fd00::ff", config.RangeSets[1].ToString());
    }

    [Fact]
    public void Multiple_ranges_in_one_set()
    {
        var config = Configs.Parse("""{"ranges":[[{"subnet":"10.1.0.0/24"},{"subnet":"10.2.0.0/24"}]]}""");
        Assert.Equal("10.1.0.1-10.1.0.254,10.2.0.1-10.2.0.254", config.RangeSets[0].ToString());
    }

    [Theory]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.300"}]]}""", "ranges[0][0].rangeStart", "ranges[0][0].rangeStart 10.1.0.300 is not an IP address")]
    [InlineData("""{"subnet":"10.1.0.0/24","rangeStart":"10.2.0.5"}""", "rangeStart", "rangeStart 10.2.0.5 is outside subnet 10.1.0.0/24")]
    [InlineData("""{"subnet":"10.1.0.0/24","rangeEnd":"10.1.1.5"}""", "rangeEnd", "rangeEnd 10.1.1.5 is outside subnet 10.1.0.0/24")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24","gateway":"10.9.0.1"}]]}""", "ranges[0][0].gateway", "outside subnet")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24","gateway":"10.1.0.255"}]]}""", "ranges[0][0].gateway", "broadcast address")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24","rangeStart":"fd00::1"}]]}""", "ranges[0][0].rangeStart", "address family")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.5/24"}]]}""", "ranges[0][0].subnet", "host bits set; the network address for /24 is 10.1.0.0")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0"}]]}""", "ranges[0][0].subnet", "not a CIDR")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/33"}]]}""", "ranges[0][0].subnet", "not a CIDR")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/31"}]]}""", "ranges[0][0].subnet", "too small")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/32"}]]}""", "ranges[0][0].subnet", "too small")]
    [InlineData("""{"ranges":[[{"subnet":"fd00::/127"}]]}""", "ranges[0][0].subnet", "too small")]
    [InlineData("""{"ranges":[[{"rangeStart":"10.1.0.5"}]]}""", "ranges[0][0].subnet", "is required")]
    [InlineData("""{"ranges":[[{"subnet":24}]]}""", "ranges[0][0].subnet", "must be a string")]
    [InlineData("""{"ranges":[[]]}""", "ranges[0]", "empty range set")]
    [InlineData("""{"ranges":[{"subnet":"10.1.0.0/24"}]}""", "ranges[0]", "must be an array")]
    [InlineData("""{"ranges":"10.1.0.0/24"}""", "ranges", "must be an array")]
    [InlineData("""{"type":"loom"}""", "ranges", "no IP ranges")]
    [InlineData("""{"rangeStart":"10.1.0.5"}""", "rangeStart", "subnet is missing")]
    [InlineData("""{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.20","rangeEnd":"10.1.0.10"}""", "rangeEnd", "before rangeStart")]
    [InlineData("""{"subnet":"10.1.0.0/30","rangeStart":"10.1.0.1","rangeEnd":"10.1.0.1"}""", "rangeStart", "no allocatable address")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"},{"subnet":"fd00::/64"}]]}""", "ranges[0][1].subnet", "mixes address families")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16"},{"subnet":"10.1.2.0/24"}]]}""", "ranges[0][1]", "overlaps ranges[0][0]")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"}],[{"subnet":"10.2.0.0/24"}],[{"subnet":"10.1.0.0/25"}]]}""", "ranges[2]", "range set ranges[2] (10.1.0.1-10.1.0.126) overlaps range set ranges[0]")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24","rangeStart":"010.1.0.5"}]]}""", "ranges[0][0].rangeStart", "not an IP address")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24","rangeStart":"10.1"}]]}""", "ranges[0][0].rangeStart", "not an IP address")]
    [InlineData("""{"ranges":[[{"subnet":"fd00::/64","gateway":"fe80::1%eth0"}]]}""", "ranges[0][0].gateway", "not an IP address")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"}]],"routes":[{"gw":"10.1.0.1"}]}""", "routes[0].dst", "is required")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0","gw":"nope"}]}""", "routes[0].gw", "routes[0].gw nope is not an IP address")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"}]],"dataDir":7}""", "dataDir", "must be a string")]
    [InlineData("""[]""", "ipam", "must be an object")]
    public void Invalid_config_names_the_key(string json, string key, string message)
    {
        var error = Configs.ParseError(json);
        Assert.Equal(key, error.Key);
        Assert.Equal(IpamErrorKind.InvalidConfig, error.Kind);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("..")]
    [InlineData("a/b")]
    public void Network_name_must_be_a_directory_name(string name)
    {
        var error = Assert.Throws<IpamConfigException>(() => Configs.Parse("""{"subnet":"10.1.0.0/24"}""", name));
        Assert.Equal("name", error.Key);
    }

    [Fact]
    public void Route_destination_host_bits_are_masked_like_go()
    {
        var config = Configs.Parse("""{"subnet":"10.1.0.0/24","routes":[{"dst":"10.9.8.7/16"}]}""");
        Assert.Equal(IPNetwork.Parse("10.9.0.0/16"), config.Routes[0].Destination);
    }

    [Fact]
    public void V4_mapped_v6_is_folded_to_v4()
    {
        var config = Configs.Parse("""{"subnet":"10.1.0.0/24","rangeStart":"::ffff:10.1.0.7"}""");
        Assert.Equal(IPAddress.Parse("10.1.0.7"), config.RangeSets[0].Ranges[0].RangeStart);
    }
}
