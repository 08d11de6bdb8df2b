using System.Net;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>How a service port becomes lb4_svc frontends: ClusterIP, node port per node address, external IPs.</summary>
public class LbFrontendsTests
{
    private static readonly BackendAddress Here = new(IPAddress.Parse("10.244.1.2"), 8080) { IsLocal = true };
    private static readonly BackendAddress There = new(IPAddress.Parse("10.244.9.2"), 8080);

    private static ServicePortState Svc() =>
        new(new ServicePortName("default", "np", null), new Frontend(IPAddress.Parse("10.96.0.50"), Protocol.Tcp, 80), SessionAffinity.None, 10800, [Here, There]);

    [Fact]
    public void A_cluster_ip_service_is_its_own_single_frontend()
    {
        var s = Svc();
        Assert.Same(s, Assert.Single(LbFrontends.Of(s, [IPAddress.Parse("192.168.10.11")])));
    }

    [Fact]
    public void A_node_port_is_a_frontend_per_node_address_and_an_external_ip_one_more()
    {
        var s = Svc() with { Type = ServiceType.NodePort, NodePort = 30080, ExternalIps = [IPAddress.Parse("203.0.113.10")], ExternalTrafficPolicy = TrafficPolicy.Local };
        var all = LbFrontends.Of(s, [IPAddress.Parse("192.168.10.11"), IPAddress.Parse("10.0.0.11")]).ToList();
        Assert.Equal(["10.96.0.50:80/tcp", "192.168.10.11:30080/tcp", "10.0.0.11:30080/tcp", "203.0.113.10:80/tcp"], all.Select(f => f.Frontend.ToString()));
        Assert.Equal([false, true, true, true], all.Select(f => f.IsExternal));
        Assert.Equal([Here, There], all[0].Backends); // internal traffic policy Cluster
        Assert.All(all.Skip(1), f => Assert.Equal([Here], f.Backends)); // external traffic policy Local
    }

    [Fact]
    public void Internal_traffic_policy_local_narrows_the_cluster_ip_frontend()
    {
        var s = Svc() with { InternalTrafficPolicy = TrafficPolicy.Local };
        Assert.Equal([Here], Assert.Single(LbFrontends.Of(s, [])).Backends);
    }

    [Fact]
    public void Node_port_addresses_choose_among_the_node_ips()
    {
        var proxy = new ServiceProxyOptions
        {
            NodeIps = [IPAddress.Parse("192.168.10.11"), IPAddress.Parse("10.0.0.11")],
            NodePortAddresses = [IPNetwork.Parse("10.0.0.0/8")],
        };
        Assert.Equal([IPAddress.Parse("10.0.0.11")], LbFrontends.NodeAddresses(proxy));
        Assert.Equal(2, LbFrontends.NodeAddresses(proxy with { NodePortAddresses = [] }).Count);
    }
}
