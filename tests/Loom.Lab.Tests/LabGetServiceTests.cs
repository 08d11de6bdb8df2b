using System.Net;
using Loom.Core.Model;

namespace Loom.Lab.Tests;

/// <summary><c>loom lab get svc</c>'s PORT(S) and EXTERNAL-IP columns, as kubectl prints them.</summary>
public sealed class LabGetServiceTests
{
    private static Service Svc(ServiceType type, params ServicePort[] ports) => new()
    {
        Namespace = "default",
        Name = "web",
        ClusterIp = IPAddress.Parse("10.96.0.20"),
        Type = type,
        Ports = ports,
    };

    [Fact]
    public void Ports_show_the_node_port_between_port_and_protocol()
    {
        Assert.Equal("80/TCP", LabGet.PortsText(Svc(ServiceType.ClusterIP, new ServicePort(null, Protocol.Tcp, 80, 8080))));
        Assert.Equal("80:31234/TCP", LabGet.PortsText(Svc(ServiceType.NodePort, new ServicePort(null, Protocol.Tcp, 80, 8080, 31234))));
        Assert.Equal("80:31234/TCP,53:30053/UDP,53:30053/TCP", LabGet.PortsText(Svc(ServiceType.LoadBalancer,
            new ServicePort("http", Protocol.Tcp, 80, 8080, 31234), new ServicePort("dns", Protocol.Udp, 53, 53, 30053), new ServicePort("dns-tcp", Protocol.Tcp, 53, 53, 30053))));
    }

    [Fact]
    public void External_ip_is_none_the_external_ips_or_pending_for_a_LoadBalancer()
    {
        var port = new ServicePort(null, Protocol.Tcp, 80, 80, 31000);
        Assert.Equal("<none>", LabGet.ExternalIp(Svc(ServiceType.NodePort, port)));
        Assert.Equal("<pending>", LabGet.ExternalIp(Svc(ServiceType.LoadBalancer, port)));
        Assert.Equal("192.168.10.50,192.168.10.51", LabGet.ExternalIp(Svc(ServiceType.LoadBalancer, port) with { ExternalIps = [IPAddress.Parse("192.168.10.50"), IPAddress.Parse("192.168.10.51")] }));
        Assert.Equal("192.168.10.50", LabGet.ExternalIp(Svc(ServiceType.ClusterIP, port with { NodePort = 0 }) with { ExternalIps = [IPAddress.Parse("192.168.10.50")] }));
    }
}
