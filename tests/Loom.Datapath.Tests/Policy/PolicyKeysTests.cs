using System.Net;
using Loom.Core.Policy;
using Loom.Datapath.Policy;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Tests.Policy;

/// <summary>The compiled entries as trie keys: the prefix lengths policy.c relies on, byte order, and the way back.</summary>
public sealed class PolicyKeysTests
{
    [Theory]
    [InlineData(0, 0, 0, 72u)]      // every protocol
    [InlineData(6, 0, 0, 80u)]      // every port of TCP
    [InlineData(6, 443, 16, 96u)]   // one port
    [InlineData(17, 8192, 3, 83u)]  // 8192-16383
    public void A_rule_becomes_the_prefix_its_protocol_and_port_bits_say(byte protocol, ushort port, byte bits, uint prefix)
    {
        var rule = new PolicyRule(PolicyDirection.Egress, 300, protocol, port, bits);
        var key = PolicyKeys.Rule(7, rule);

        Assert.Equal(prefix, key.PrefixLength);
        Assert.Equal(7u, key.EndpointId);
        Assert.Equal(300u, key.Identity);
        Assert.Equal((byte)1, key.Direction);
        Assert.Equal(LbMaps.PortToNetwork(port), key.Port);
        Assert.Equal(rule, PolicyKeys.Rule(key));
    }

    [Fact]
    public void A_region_is_its_prefix_after_the_64_fixed_bits_with_the_address_in_network_order()
    {
        var cidr = new PolicyCidr(PolicyDirection.Ingress, IPNetwork.Parse("192.168.0.0/16"), ReservedIdentity.CidrBase + 3);
        var key = PolicyKeys.Cidr(9, cidr);

        Assert.Equal(80u, key.PrefixLength);
        Assert.Equal(new byte[] { 192, 168, 0, 0 }, BitConverter.GetBytes(key.Address));
        Assert.Equal(cidr, PolicyKeys.Cidr(key, cidr.Identity));
    }

    [Theory]
    [InlineData(6, 7001, 13)]
    [InlineData(0, 80, 16)]
    [InlineData(0, 0, 4)]
    [InlineData(6, 80, 17)]
    public void A_rule_the_trie_cannot_hold_exactly_is_refused(byte protocol, ushort port, byte bits) =>
        Assert.ThrowsAny<ArgumentException>(() => PolicyKeys.Rule(1, new PolicyRule(PolicyDirection.Ingress, 5, protocol, port, bits)));

    [Fact]
    public void Endpoint_ids_fit_the_mark()
    {
        PolicyKeys.CheckEndpointId(1);
        PolicyKeys.CheckEndpointId(0xFFFF);
        Assert.Throws<ArgumentOutOfRangeException>(() => PolicyKeys.CheckEndpointId(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => PolicyKeys.CheckEndpointId(0x10000));
    }
}
