using System.Net;
using System.Text.Json;
using Loom.Core.Model;

namespace Loom.Core.Tests.Model;

public class ModelJsonTests
{
    [Fact]
    public void Node_round_trips_with_addresses_as_text()
    {
        var node = new Node
        {
            Name = "node-1",
            UnderlayInterface = "eth1",
            UnderlayIp = IPAddress.Parse("192.168.56.11"),
            PodCidrs = [IPNetwork.Parse("10.244.1.0/24"), IPNetwork.Parse("fd00:10:244:1::/64")],
            Labels = new Dictionary<string, string> { ["kubernetes.io/hostname"] = "node-1" },
            VtepMac = "aa:bb:cc:dd:ee:ff",
            Heartbeat = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero),
            Ready = true,
            Taints = [new Taint("node.kubernetes.io/not-ready", null, TaintEffect.NoExecute)],
            Unschedulable = true,
        };

        var json = JsonSerializer.Serialize(node, LoomJsonContext.Default.Node);
        Assert.Contains("\"underlayIp\":\"192.168.56.11\"", json, StringComparison.Ordinal);
        Assert.Contains("\"10.244.1.0/24\"", json, StringComparison.Ordinal);
        Assert.Contains("\"effect\":\"NoExecute\"", json, StringComparison.Ordinal);

        var back = JsonSerializer.Deserialize(json, LoomJsonContext.Default.Node)!;
        Assert.Equal(node.UnderlayIp, back.UnderlayIp);
        Assert.Equal(node.PodCidrs, back.PodCidrs);
        Assert.Equal(node.Labels, back.Labels);
        Assert.Equal(node.Taints, back.Taints);
        Assert.Equal(node.Heartbeat, back.Heartbeat);
        Assert.Equal(json, JsonSerializer.Serialize(back, LoomJsonContext.Default.Node));
    }

    [Fact]
    public void Service_uses_kubernetes_spellings()
    {
        var service = new Service
        {
            Namespace = "default",
            Name = "web",
            ClusterIp = IPAddress.Parse("10.96.0.10"),
            Ports = [new ServicePort("http", Protocol.Tcp, 80, 8080), new ServicePort("dns", Protocol.Udp, 53, 53)],
            Selector = new Dictionary<string, string> { ["app"] = "web" },
            SessionAffinity = SessionAffinity.ClientIP,
        };

        var json = JsonSerializer.Serialize(service, LoomJsonContext.Default.Service);
        Assert.Contains("\"protocol\":\"TCP\"", json, StringComparison.Ordinal);
        Assert.Contains("\"protocol\":\"UDP\"", json, StringComparison.Ordinal);
        Assert.Contains("\"sessionAffinity\":\"ClientIP\"", json, StringComparison.Ordinal);
        Assert.DoesNotContain("\"key\"", json, StringComparison.Ordinal);
        Assert.Equal("default/web", service.Key);

        var back = JsonSerializer.Deserialize(json, LoomJsonContext.Default.Service)!;
        Assert.Equal(service.Ports, back.Ports);
        Assert.Equal(10800, back.SessionAffinityTimeoutSeconds);
    }

    [Fact]
    public void Cluster_config_defaults_match_flannel_and_kubernetes()
    {
        var config = JsonSerializer.Deserialize("{}", LoomJsonContext.Default.ClusterConfig)!;
        Assert.Equal([IPNetwork.Parse("10.244.0.0/16")], config.PodCidrPools);
        Assert.Equal(24, config.NodeMaskSize);
        Assert.Equal(IPNetwork.Parse("10.96.0.0/12"), config.ServiceCidr);
        Assert.Equal(RoutingMode.Tunnel, config.Routing);
        Assert.Equal(new TunnelConfig { Device = "loom.1", Vni = 1, Port = 8472 }, config.Tunnel);
        Assert.Equal(ServiceProxyMode.Iptables, config.ServiceBackend);
        Assert.True(config.IpMasq);

        var json = JsonSerializer.Serialize(config with { Routing = RoutingMode.Native }, LoomJsonContext.Default.ClusterConfig);
        Assert.Contains("\"routing\":\"native\"", json, StringComparison.Ordinal);
        Assert.Contains("\"serviceBackend\":\"iptables\"", json, StringComparison.Ordinal);
    }

    [Fact]
    public void Endpoint_round_trips()
    {
        var endpoint = new Endpoint
        {
            Namespace = "default",
            Name = "web-1",
            Node = "node-1",
            ContainerId = "abc123",
            IPs = [IPAddress.Parse("10.244.1.5")],
            Ready = true,
        };
        var back = JsonSerializer.Deserialize(JsonSerializer.Serialize(endpoint, LoomJsonContext.Default.Endpoint), LoomJsonContext.Default.Endpoint)!;
        Assert.Equal("eth0", back.Interface);
        Assert.Equal(endpoint.IPs, back.IPs);
        Assert.Equal("default/web-1", back.Key);
    }

    [Fact]
    public void Missing_optional_fields_keep_their_defaults()
    {
        var node = JsonSerializer.Deserialize("""{"name":"n","underlayInterface":"eth1","underlayIp":"10.0.0.1"}""", LoomJsonContext.Default.Node)!;
        Assert.Empty(node.PodCidrs);
        Assert.Empty(node.Labels);
        Assert.Empty(node.Taints);
        Assert.Null(node.VtepMac);
        Assert.False(node.Ready);
    }

    [Theory]
    [InlineData("""{"name":"n","underlayInterface":"eth1","underlayIp":"not-an-ip"}""")]
    [InlineData("""{"name":"n","underlayInterface":"eth1","underlayIp":"10.0.0.1","podCidrs":["10.244.1.7/24"]}""")]
    [InlineData("""{"name":"n","underlayInterface":"eth1"}""")]
    public void Malformed_documents_are_rejected(string json)
        => Assert.ThrowsAny<JsonException>(() => JsonSerializer.Deserialize(json, LoomJsonContext.Default.Node));

    [Fact]
    public void Object_keys_reject_slashes()
        => Assert.Throws<ArgumentException>(() => ObjectKey.Of("a/b", "c"));
}
