using System.Text;
using Loom.Core.Cni;

namespace Loom.Core.Tests.Cni;

public class NetConfTests
{
    private static NetConf Parse(string json) => NetConf.Parse(Encoding.UTF8.GetBytes(json));

    private static CniException Fails(string json) => Assert.Throws<CniException>(() => Parse(json));

    [Fact]
    public void Minimal_config_gets_the_bridge_defaults()
    {
        var c = Parse("""{"cniVersion":"1.1.0","name":"loom","type":"loom-cni"}""");
        Assert.Equal("1.1.0", c.CniVersion);
        Assert.Equal("loom", c.Name);
        Assert.Equal("loom-cni", c.Type);
        Assert.Equal("cni0", c.BridgeName);
        Assert.False(c.IsGateway || c.IsDefaultGateway || c.ForceAddress || c.IpMasq || c.HairpinMode || c.PromiscMode || c.MacSpoofCheck || c.EnableDad);
        Assert.Equal(0, c.Mtu);
        Assert.Equal(0, c.Vlan);
        Assert.Null(c.Ipam);
        Assert.True(c.Dns.IsEmpty);
        Assert.Null(c.PrevResult);
        Assert.Null(c.ValidAttachments);
        Assert.Null(c.ArgsJson);
        Assert.Empty(c.RuntimeConfig.Ips);
    }

    [Theory]
    [InlineData("", PodPlumbing.Bridge)]
    [InlineData(",\"plumbing\":\"bridge\"", PodPlumbing.Bridge)]
    [InlineData(",\"plumbing\":\"routed\"", PodPlumbing.Routed)]
    public void Plumbing_is_bridge_unless_routed_is_asked_for(string key, PodPlumbing expected)
    {
        var c = Parse("{\"cniVersion\":\"1.1.0\",\"name\":\"loom\",\"type\":\"loom-cni\"" + key + "}");
        Assert.Equal(expected, c.Plumbing);
    }

    [Theory]
    [InlineData("\"plumbing\":\"overlay\"", "key \"plumbing\": must be \"bridge\" or \"routed\", got \"overlay\"")]
    [InlineData("\"plumbing\":\"routed\",\"bridge\":\"cni0\"", "key \"bridge\": applies to \"plumbing\": \"bridge\" only")]
    [InlineData("\"plumbing\":\"routed\",\"isDefaultGateway\":false", "key \"isDefaultGateway\": applies to")]
    [InlineData("\"plumbing\":\"routed\",\"vlan\":0", "key \"vlan\": applies to")]
    public void A_bad_plumbing_or_a_bridge_key_with_routed_is_code_7_naming_the_key(string keys, string details)
    {
        var e = Fails("{\"cniVersion\":\"1.1.0\",\"name\":\"loom\",\"type\":\"loom-cni\"," + keys + "}");
        Assert.Equal(CniErrorCodes.InvalidNetworkConfig, e.Code);
        Assert.StartsWith(details, e.Details, StringComparison.Ordinal);
    }

    private const string Full = """
        {
          "cniVersion": "1.0.0", "name": "dbnet", "type": "loom-cni",
          "bridge": "loom0", "isGateway": true, "isDefaultGateway": true, "forceAddress": true,
          "ipMasq": true, "mtu": 1400, "hairpinMode": true, "promiscMode": true, "vlan": 42,
          "macspoofchk": true, "enabledad": true, "unknownKey": [1, 2],
          "ipam": { "type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1" },
          "dns": { "nameservers": ["10.1.0.1"], "domain": "cluster.local", "search": ["a.b"], "options": ["ndots:5"] },
          "args": { "cni": { "ips": ["10.1.0.7"] } },
          "runtimeConfig": {
            "ips": ["10.1.0.9/16"], "mac": "0a:58:0a:01:00:09",
            "portMappings": [ { "hostPort": 8080, "containerPort": 80, "protocol": "tcp" } ],
            "bandwidth": { "ingressRate": 1000 }
          }
        }
        """;

    [Fact]
    public void Full_config_reads_every_field()
    {
        var c = Parse(Full);
        Assert.Equal("loom0", c.BridgeName);
        Assert.True(c.IsGateway && c.IsDefaultGateway && c.ForceAddress && c.IpMasq && c.HairpinMode && c.PromiscMode && c.MacSpoofCheck && c.EnableDad);
        Assert.Equal(1400, c.Mtu);
        Assert.Equal(42, c.Vlan);
        Assert.Equal("host-local", c.Ipam!.Type);
        Assert.Equal("10.1.0.0/16", c.Ipam.Element.GetProperty("subnet").GetString());
        Assert.StartsWith("{ \"type\": \"host-local\"", c.Ipam.RawJson, StringComparison.Ordinal);
        Assert.Equal(["10.1.0.1"], c.Dns.Nameservers);
        Assert.Equal("cluster.local", c.Dns.Domain);
        Assert.Equal(["a.b"], c.Dns.Search);
        Assert.Equal(["ndots:5"], c.Dns.Options);
        Assert.Contains("10.1.0.7", c.ArgsJson, StringComparison.Ordinal);
        Assert.Equal(["10.1.0.9/16"], c.RuntimeConfig.Ips);
        Assert.Equal("0a:58:0a:01:00:09", c.RuntimeConfig.Mac);
        Assert.Equal("""[ { "hostPort": 8080, "containerPort": 80, "protocol": "tcp" } ]""", c.RuntimeConfig.PortMappingsJson);
        Assert.Equal("""{ "ingressRate": 1000 }""", c.RuntimeConfig.BandwidthJson);
        Assert.Equal(2, c.Root.GetProperty("unknownKey").GetArrayLength());
    }

    [Fact]
    public void Raw_bytes_are_kept_unchanged()
    {
        var bytes = Encoding.UTF8.GetBytes(Full);
        Assert.Equal(bytes, NetConf.Parse(bytes).Raw.ToArray());
    }

    [Fact]
    public void Keys_match_case_insensitively_and_null_means_default_like_go()
    {
        var c = Parse("""{"CNIVersion":"0.4.0","Name":"n","TYPE":"t","bridge":null,"MTU":9000,"mtu":1500}""");
        Assert.Equal("0.4.0", c.CniVersion);
        Assert.Equal("cni0", c.BridgeName);
        Assert.Equal(1500, c.Mtu);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"name\":}")]
    [InlineData("[1,2]")]
    [InlineData("\"x\"")]
    public void Malformed_json_is_code_6(string json)
    {
        Assert.Equal(CniErrorCodes.DecodingFailure, Fails(json).Code);
    }

    [Theory]
    [InlineData("""{"name":"n","type":"t"}""", "cniVersion")]
    [InlineData("""{"cniVersion":"1.1.0","type":"t"}""", "name")]
    [InlineData("""{"cniVersion":"1.1.0","name":"","type":"t"}""", "name")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n"}""", "type")]
    [InlineData("""{"cniVersion":110,"name":"n","type":"t"}""", "cniVersion")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","mtu":"1500"}""", "mtu")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","mtu":1500.5}""", "mtu")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","mtu":-1}""", "mtu")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","isGateway":"true"}""", "isGateway")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","vlan":4095}""", "vlan")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","bridge":"this-is-too-long0"}""", "bridge")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","ipam":"host-local"}""", "ipam")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","ipam":{}}""", "ipam.type")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","ipam":{"type":"../evil"}}""", "ipam.type")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"a/b"}""", "type")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","dns":{"nameservers":"1.1.1.1"}}""", "dns.nameservers")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","dns":{"search":[1]}}""", "dns.search[0]")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","runtimeConfig":{"ips":"10.0.0.1"}}""", "runtimeConfig.ips")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","prevResult":{"ips":[{"address":"10.0.0.1"}]}}""", "prevResult.ips[0].address")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","type":"t","cni.dev/valid-attachments":[{"containerID":"c"}]}""", "cni.dev/valid-attachments[0].ifname")]
    public void Invalid_config_is_code_7_naming_the_key(string json, string key)
    {
        var ex = Fails(json);
        Assert.Equal(CniErrorCodes.InvalidNetworkConfig, ex.Code);
        Assert.Contains($"\"{key}\"", ex.Details, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("_net")]
    [InlineData("my net")]
    [InlineData("a/b")]
    [InlineData("-x")]
    public void Invalid_network_name_is_code_7(string name)
    {
        var ex = Fails($$"""{"cniVersion":"1.1.0","name":"{{name}}","type":"t"}""");
        Assert.Equal(CniErrorCodes.InvalidNetworkConfig, ex.Code);
        Assert.Contains("network name", ex.Details, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0.1.0")]
    [InlineData("0.2.0")]
    [InlineData("1.2.0")]
    [InlineData("2.0.0")]
    [InlineData("banana")]
    public void Unsupported_version_is_code_1(string version)
    {
        Assert.Equal(CniErrorCodes.IncompatibleCniVersion, Fails($$"""{"cniVersion":"{{version}}","name":"n","type":"t"}""").Code);
    }

    [Theory]
    [InlineData("0.3.0", CniCommand.Check, false)]
    [InlineData("0.3.1", CniCommand.Check, false)]
    [InlineData("0.4.0", CniCommand.Check, true)]
    [InlineData("1.0.0", CniCommand.Status, false)]
    [InlineData("1.1.0", CniCommand.Status, true)]
    [InlineData("1.0.0", CniCommand.Gc, false)]
    [InlineData("1.1.0", CniCommand.Gc, true)]
    [InlineData("0.3.0", CniCommand.Add, true)]
    [InlineData("0.3.0", CniCommand.Del, true)]
    public void Commands_are_gated_by_config_version(string version, CniCommand command, bool allowed)
    {
        var bytes = Encoding.UTF8.GetBytes($$"""{"cniVersion":"{{version}}","name":"n","type":"t"}""");
        if (allowed)
        {
            Assert.Equal(version, NetConf.Parse(bytes, command).CniVersion);
        }
        else
        {
            var ex = Assert.Throws<CniException>(() => NetConf.Parse(bytes, command));
            Assert.Equal(CniErrorCodes.IncompatibleCniVersion, ex.Code);
            Assert.Contains(command.ToWire(), ex.Msg, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("cni.dev/valid-attachments")]
    [InlineData("cni.dev/attachments")]
    public void Gc_attachments_from_either_key(string key)
    {
        var c = Parse($$"""{"cniVersion":"1.1.0","name":"n","type":"t","{{key}}":[{"containerID":"c1","ifname":"eth0"},{"containerID":"c2","ifname":"net1"}]}""");
        Assert.Equal([new GcAttachment("c1", "eth0"), new GcAttachment("c2", "net1")], c.ValidAttachments);
    }

    [Fact]
    public void Gc_valid_attachments_wins_over_the_legacy_key_and_empty_is_not_absent()
    {
        var c = Parse("""{"cniVersion":"1.1.0","name":"n","type":"t","cni.dev/attachments":[{"containerID":"old","ifname":"eth0"}],"cni.dev/valid-attachments":[]}""");
        Assert.NotNull(c.ValidAttachments);
        Assert.Empty(c.ValidAttachments);
    }

    [Fact]
    public void PrevResult_of_an_old_version_is_converted_up()
    {
        var c = Parse("""
            {"cniVersion":"0.3.1","name":"n","type":"t","prevResult":{
              "cniVersion":"0.3.1",
              "interfaces":[{"name":"eth0","mac":"0a:58:0a:01:00:05","sandbox":"/run/netns/x"}],
              "ips":[{"version":"4","interface":0,"address":"10.1.0.5/16","gateway":"10.1.0.1"}],
              "routes":[{"dst":"0.0.0.0/0"}],
              "dns":{}
            }}
            """);
        Assert.Equal("0.3.1", c.PrevResult!.CniVersion);
        Assert.Equal(
            """{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mac":"0a:58:0a:01:00:05","sandbox":"/run/netns/x"}],"ips":[{"interface":0,"address":"10.1.0.5/16","gateway":"10.1.0.1"}],"routes":[{"dst":"0.0.0.0/0"}]}""",
            c.PrevResult.Serialize("1.1.0"));
    }

    [Fact]
    public void PrevResult_without_its_own_version_takes_the_config_version()
    {
        var c = Parse("""{"cniVersion":"0.4.0","name":"n","type":"t","prevResult":{"ips":[{"version":"6","address":"fd00::5/64"}]}}""");
        Assert.Equal("0.4.0", c.PrevResult!.CniVersion);
        Assert.Equal("fd00::5/64", c.PrevResult.Ips[0].Address.ToString());
    }
}
