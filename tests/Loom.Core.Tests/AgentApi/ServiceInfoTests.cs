using System.Text.Json;
using Loom.Core.AgentApi;

namespace Loom.Core.Tests.AgentApi;

/// <summary><c>loom service list</c>'s columns from one ServiceInfo, and what the socket carries.</summary>
public sealed class ServiceInfoTests
{
    private static ServiceInfo Info(string type = "ClusterIP") => new()
    {
        Namespace = "default",
        Name = "web",
        ClusterIp = "10.96.0.20",
        Port = 80,
        Protocol = "TCP",
        Type = type,
        Endpoints = ["10.244.1.5:80", "10.244.2.7:80"],
        LocalEndpoints = ["10.244.1.5:80"],
    };

    [Fact]
    public void Ports_show_the_node_port_as_kubectl_does()
    {
        Assert.Equal("80/TCP", Info().PortText);
        Assert.Equal("80:31234/TCP", (Info("NodePort") with { NodePort = 31234 }).PortText);
    }

    [Fact]
    public void External_ip_is_none_pending_or_the_addresses()
    {
        Assert.Equal("<none>", Info("NodePort").ExternalIpText);
        Assert.Equal("<pending>", Info("LoadBalancer").ExternalIpText);
        Assert.Equal("192.168.10.50,192.168.10.51", (Info() with { ExternalIps = ["192.168.10.50", "192.168.10.51"] }).ExternalIpText);
    }

    [Fact]
    public void Policy_shows_ext_only_for_external_services_and_the_health_check_port()
    {
        Assert.Equal("int=Local", (Info() with { InternalTrafficPolicy = "Local" }).PolicyText);
        Assert.Equal("ext=Local int=Cluster", (Info("NodePort") with { ExternalTrafficPolicy = "Local" }).PolicyText);
        Assert.Equal("ext=Local int=Cluster hc=32000", (Info("LoadBalancer") with { ExternalTrafficPolicy = "Local", HealthCheckNodePort = 32000 }).PolicyText);
        Assert.Equal("ext=Cluster int=Cluster", (Info() with { ExternalIps = ["192.168.10.50"] }).PolicyText);
    }

    [Fact]
    public void Local_endpoints_are_marked() =>
        Assert.Equal(["10.244.1.5:80(local)", "10.244.2.7:80"], Info().EndpointTexts);

    [Fact]
    public void The_socket_carries_the_fields_not_the_column_texts()
    {
        var json = JsonSerializer.Serialize(new AgentResponse { Ok = true, Services = [Info("LoadBalancer") with { NodePort = 31234, HealthCheckNodePort = 32000, ExternalTrafficPolicy = "Local" }] }, AgentApiJsonContext.Default.AgentResponse);
        Assert.DoesNotContain("portText", json, StringComparison.Ordinal);
        Assert.DoesNotContain("(local)", json, StringComparison.Ordinal);
        var back = Assert.Single(JsonSerializer.Deserialize(json, AgentApiJsonContext.Default.AgentResponse)!.Services!);
        Assert.Equal((31234, 32000, "Local", "LoadBalancer"), (back.NodePort, back.HealthCheckNodePort, back.ExternalTrafficPolicy, back.Type));
        Assert.Equal(["10.244.1.5:80"], back.LocalEndpoints);
    }
}
