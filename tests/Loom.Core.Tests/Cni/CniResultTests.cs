using System.Net;
using CsCheck;
using Loom.Core.Cni;

namespace Loom.Core.Tests.Cni;

public class CniResultTests
{
    /// <summary>A bridge-style result using every field, so each version's filtering shows.</summary>
    private static CniResult Sample()
    {
        var r = new CniResult();
        r.Interfaces.Add(new CniInterface { Name = "loom0", Mac = "00:11:22:33:44:55", Mtu = 1500 });
        r.Interfaces.Add(new CniInterface { Name = "eth0", Mac = "99:88:77:66:55:44", Sandbox = "/run/netns/blue", SocketPath = "/run/x.sock", PciId = "0000:00:1f.6" });
        r.Ips.Add(new CniIpConfig { Address = CniCidr.Parse("10.1.0.5/16"), Gateway = IPAddress.Parse("10.1.0.1"), Interface = 1 });
        r.Ips.Add(new CniIpConfig { Address = CniCidr.Parse("fd00:1::5/64"), Interface = 0 });
        r.Routes.Add(new CniRoute { Destination = CniCidr.Parse("0.0.0.0/0") });
        r.Routes.Add(new CniRoute { Destination = CniCidr.Parse("10.2.0.0/16"), Gateway = IPAddress.Parse("10.1.0.254"), Mtu = 1400, AdvMss = 1360, Priority = 10, Table = 0, Scope = 253 });
        r.Dns.Nameservers.Add("10.1.0.1");
        r.Dns.Domain = "cluster.local";
        r.Dns.Search.Add("svc.cluster.local");
        r.Dns.Options.Add("ndots:5");
        return r;
    }

    private static string Head(string version) => "{\"cniVersion\":\"" + version + "\"";

    private const string LegacyBody =
        ""","interfaces":[{"name":"loom0","mac":"00:11:22:33:44:55"},{"name":"eth0","mac":"99:88:77:66:55:44","sandbox":"/run/netns/blue"}]"""
        + ""","ips":[{"version":"4","interface":1,"address":"10.1.0.5/16","gateway":"10.1.0.1"},{"version":"6","interface":0,"address":"fd00:1::5/64"}]"""
        + ""","routes":[{"dst":"0.0.0.0/0"},{"dst":"10.2.0.0/16","gw":"10.1.0.254"}]"""
        + ""","dns":{"nameservers":["10.1.0.1"],"domain":"cluster.local","search":["svc.cluster.local"],"options":["ndots:5"]}}""";

    private const string V100Body =
        ""","interfaces":[{"name":"loom0","mac":"00:11:22:33:44:55"},{"name":"eth0","mac":"99:88:77:66:55:44","sandbox":"/run/netns/blue"}]"""
        + ""","ips":[{"interface":1,"address":"10.1.0.5/16","gateway":"10.1.0.1"},{"interface":0,"address":"fd00:1::5/64"}]"""
        + ""","routes":[{"dst":"0.0.0.0/0"},{"dst":"10.2.0.0/16","gw":"10.1.0.254"}]"""
        + ""","dns":{"nameservers":["10.1.0.1"],"domain":"cluster.local","search":["svc.cluster.local"],"options":["ndots:5"]}}""";

    private const string V110Body =
        ""","interfaces":[{"name":"loom0","mac":"00:11:22:33:44:55","mtu":1500},{"name":"eth0","mac":"99:88:77:66:55:44","sandbox":"/run/netns/blue","socketPath":"/run/x.sock","pciID":"0000:00:1f.6"}]"""
        + ""","ips":[{"interface":1,"address":"10.1.0.5/16","gateway":"10.1.0.1"},{"interface":0,"address":"fd00:1::5/64"}]"""
        + ""","routes":[{"dst":"0.0.0.0/0"},{"dst":"10.2.0.0/16","gw":"10.1.0.254","mtu":1400,"advmss":1360,"priority":10,"table":0,"scope":253}]"""
        + ""","dns":{"nameservers":["10.1.0.1"],"domain":"cluster.local","search":["svc.cluster.local"],"options":["ndots:5"]}}""";

    public static TheoryData<string, string> Golden => new()
    {
        { "0.3.0", Head("0.3.0") + LegacyBody },
        { "0.3.1", Head("0.3.1") + LegacyBody },
        { "0.4.0", Head("0.4.0") + LegacyBody },
        { "1.0.0", Head("1.0.0") + V100Body },
        { "1.1.0", Head("1.1.0") + V110Body },
    };

    [Theory]
    [MemberData(nameof(Golden))]
    public void Serializes_the_exact_shape_of_each_version(string version, string expected)
    {
        Assert.Equal(expected, Sample().Serialize(version));
    }

    [Theory]
    [MemberData(nameof(Golden))]
    public void Parse_then_serialize_round_trips(string version, string json)
    {
        var parsed = CniResult.Parse(json);
        Assert.Equal(version, parsed.CniVersion);
        Assert.Equal(json, parsed.Serialize(version));
    }

    [Fact]
    public void Old_result_converts_up_and_new_result_converts_down()
    {
        var old = CniResult.Parse(Head("0.4.0") + LegacyBody);
        // Fields that 0.4.0 cannot carry are simply absent after the upgrade.
        Assert.Equal(Head("1.0.0") + V100Body, old.Serialize("1.0.0"));

        var current = CniResult.Parse(Head("1.1.0") + V110Body);
        Assert.Equal(Head("0.3.1") + LegacyBody, current.Serialize("0.3.1"));
    }

    [Fact]
    public void Empty_fields_are_omitted_and_empty_dns_only_appears_in_0x_like_libcni()
    {
        var r = new CniResult();
        r.Ips.Add(new CniIpConfig { Address = CniCidr.Parse("10.1.0.5/16") });
        Assert.Equal("""{"cniVersion":"1.1.0","ips":[{"address":"10.1.0.5/16"}]}""", r.Serialize("1.1.0"));
        Assert.Equal("""{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/16"}]}""", r.Serialize("1.0.0"));
        Assert.Equal("""{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.1.0.5/16"}],"dns":{}}""", r.Serialize("0.4.0"));
    }

    [Fact]
    public void Ipam_style_result_from_the_spec_parses()
    {
        var r = CniResult.Parse("""
            {"ips":[{"address":"10.1.0.5/16","gateway":"10.1.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.1.0.1"]}}
            """, "1.1.0");
        Assert.Equal("1.1.0", r.CniVersion);
        Assert.Null(r.Ips[0].Interface);
        Assert.Equal(IPAddress.Parse("10.1.0.1"), r.Ips[0].Gateway);
        Assert.Equal(new CniCidr(IPAddress.Any, 0), r.Routes[0].Destination);
        Assert.Equal(["10.1.0.1"], r.Dns.Nameservers);
    }

    [Fact]
    public void Host_bits_are_kept_in_addresses()
    {
        var cidr = CniCidr.Parse("10.1.0.5/16");
        Assert.Equal(IPAddress.Parse("10.1.0.5"), cidr.Address);
        Assert.Equal(16, cidr.PrefixLength);
        Assert.True(cidr.IsIPv4);
    }

    [Theory]
    [InlineData("10.1.0.5")]
    [InlineData("10.1/16")]
    [InlineData("10.1.0.5/33")]
    [InlineData("10.1.0.05/16")]
    [InlineData("fd00::1/129")]
    [InlineData("fd00::1%eth0/64")]
    [InlineData("/16")]
    [InlineData("10.1.0.5/")]
    public void Rejects_bad_cidrs(string text)
    {
        Assert.False(CniCidr.TryParse(text, out _));
    }

    [Theory]
    [InlineData("{")]
    [InlineData("[]")]
    [InlineData("""{"ips":[{"address":"10.1.0.5"}]}""")]
    [InlineData("""{"ips":[{"address":"10.1.0.5/16","gateway":"x"}]}""")]
    [InlineData("""{"ips":[{"version":"5","address":"10.1.0.5/16"}]}""")]
    [InlineData("""{"ips":[{"address":"10.1.0.5/16","interface":-1}]}""")]
    [InlineData("""{"routes":[{"gw":"10.1.0.1"}]}""")]
    [InlineData("""{"routes":[{"dst":"0.0.0.0/0","table":"main"}]}""")]
    [InlineData("""{"interfaces":{}}""")]
    public void Malformed_results_are_code_6(string json)
    {
        Assert.Equal(CniErrorCodes.DecodingFailure, Assert.Throws<CniException>(() => CniResult.Parse(json)).Code);
    }

    [Theory]
    [InlineData("0.2.0")]
    [InlineData("9.9.9")]
    public void Unsupported_result_version_is_code_1(string version)
    {
        var ex = Assert.Throws<CniException>(() => CniResult.Parse($$"""{"cniVersion":"{{version}}"}"""));
        Assert.Equal(CniErrorCodes.IncompatibleCniVersion, ex.Code);
        Assert.Equal(CniErrorCodes.IncompatibleCniVersion, Assert.Throws<CniException>(() => new CniResult().Serialize(version)).Code);
    }

    [Fact]
    public void Property_round_trip_for_addresses_and_routes()
    {
        var gen =
            from v4 in Gen.Bool
            from bytes in Gen.Byte.Array[16]
            from prefix in Gen.Int[0, 128]
            from table in Gen.Int[0, 255].Nullable()
            from mtu in Gen.Int[0, 9000]
            from version in Gen.OneOf<string>("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
            select (v4 ? new IPAddress(bytes[..4]) : new IPAddress(bytes), v4 ? prefix % 33 : prefix, table, mtu, version);
        gen.Sample(t =>
        {
            var (address, prefix, table, mtu, version) = t;
            var r = new CniResult();
            r.Ips.Add(new CniIpConfig { Address = new CniCidr(address, prefix), Gateway = address });
            r.Routes.Add(new CniRoute { Destination = new CniCidr(address, prefix), Table = table, Mtu = mtu });
            var json = r.Serialize(version);
            var back = CniResult.Parse(json);
            Assert.Equal(new CniCidr(address, prefix), back.Ips[0].Address);
            Assert.Equal(address, back.Ips[0].Gateway);
            Assert.Equal(json, back.Serialize(version));
        });
    }
}
