using System.Text.Json;

namespace Loom.Cni.Tests;

/// <summary>ADD's result in each supported cniVersion, straight from the published binary.</summary>
public sealed class AddResultShapeTests : IDisposable
{
    private readonly CniNode _node = new();

    public void Dispose() => _node.Dispose();

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public void Add_result_has_the_shape_of_its_cni_version(string version)
    {
        var pod = _node.NewPod();
        var conf = _node.Conf(version, c => c["isDefaultGateway"] = true);
        var r = _node.Add(conf, "shape1", pod);

        Assert.Equal(version, r.GetProperty("cniVersion").GetString());
        var legacy = version is "0.3.0" or "0.3.1" or "0.4.0";
        var v11 = version == "1.1.0";

        var interfaces = r.GetProperty("interfaces").EnumerateArray().ToList();
        Assert.Equal(3, interfaces.Count);
        Assert.Equal("cni0", interfaces[0].GetProperty("name").GetString());
        Assert.False(interfaces[0].TryGetProperty("sandbox", out _));
        Assert.Equal(CniNode.HostVethName("shape1"), interfaces[1].GetProperty("name").GetString());
        Assert.False(interfaces[1].TryGetProperty("sandbox", out _));
        Assert.Equal("eth0", interfaces[2].GetProperty("name").GetString());
        Assert.Equal(CniNode.PathOf(pod), interfaces[2].GetProperty("sandbox").GetString());
        foreach (var i in interfaces)
        {
            Assert.Matches("^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", i.GetProperty("mac").GetString());
            Assert.Equal(v11, i.TryGetProperty("mtu", out _)); // mtu on interfaces is new in 1.1.0
        }

        // The MACs are the real ones.
        Assert.Equal(Mac(_node.Bridge().HardwareAddr), interfaces[0].GetProperty("mac").GetString());
        Assert.Equal(Mac(pod.Netlink.LinkByName("eth0")!.HardwareAddr), interfaces[2].GetProperty("mac").GetString());

        var ips = r.GetProperty("ips").EnumerateArray().ToList();
        var ip = Assert.Single(ips);
        Assert.Equal(2, ip.GetProperty("interface").GetInt32());
        Assert.Equal("10.244.7.2/24", ip.GetProperty("address").GetString());
        Assert.Equal("10.244.7.1", ip.GetProperty("gateway").GetString());
        if (legacy)
        {
            Assert.Equal("4", ip.GetProperty("version").GetString());
        }
        else
        {
            Assert.False(ip.TryGetProperty("version", out _), "1.x results have no ips[].version");
        }

        var route = Assert.Single(r.GetProperty("routes").EnumerateArray().ToList());
        Assert.Equal("0.0.0.0/0", route.GetProperty("dst").GetString());
        Assert.Equal("10.244.7.1", route.GetProperty("gw").GetString());

        // libcni's 0.x types always print "dns": {}; 1.x leaves an empty one out.
        Assert.Equal(legacy, r.TryGetProperty("dns", out _));

        _node.Del(conf, "shape1", pod);
        Assert.Empty(_node.IpamFiles());
    }

    [Fact]
    public void Dns_from_the_config_is_returned()
    {
        var pod = _node.NewPod();
        var conf = _node.Conf(edit: c => c["dns"] = JsonNodeOf("""{"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"], "options": ["ndots:5"]}"""));
        var r = _node.Add(conf, "dns1", pod);
        var dns = r.GetProperty("dns");
        Assert.Equal("10.96.0.10", dns.GetProperty("nameservers")[0].GetString());
        Assert.Equal("svc.cluster.local", dns.GetProperty("search")[0].GetString());
        Assert.Equal("ndots:5", dns.GetProperty("options")[0].GetString());
    }

    private static System.Text.Json.Nodes.JsonNode JsonNodeOf(string json) => System.Text.Json.Nodes.JsonNode.Parse(json)!;

    private static string Mac(System.Net.NetworkInformation.PhysicalAddress? mac) =>
        string.Join(':', mac!.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    internal static JsonElement Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.Clone();
    }
}
