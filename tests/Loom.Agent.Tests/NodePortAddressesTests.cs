using System.Net;

namespace Loom.Agent.Tests;

/// <summary>agent.json's nodePortAddresses, checked when the agent starts (before any service write).</summary>
public sealed class NodePortAddressesTests
{
    [Fact]
    public void Ipv4_cidrs_are_taken_and_anything_else_stops_the_start_naming_it()
    {
        Assert.Equal([IPNetwork.Parse("192.168.10.0/24"), IPNetwork.Parse("127.0.0.0/8")], AgentHost.ParseNodePortAddresses(["192.168.10.0/24", "127.0.0.0/8"]));
        Assert.Empty(AgentHost.ParseNodePortAddresses([]));
        foreach (var bad in new[] { "192.168.10.1", "fd00::/64", "eth1", "192.168.10.0/33" })
        {
            var e = Assert.Throws<AgentStartException>(() => AgentHost.ParseNodePortAddresses(["10.0.0.0/8", bad]));
            Assert.Equal($"nodePortAddresses: \"{bad}\" is not an IPv4 CIDR (e.g. 192.168.10.0/24)", e.Message);
        }
    }
}
