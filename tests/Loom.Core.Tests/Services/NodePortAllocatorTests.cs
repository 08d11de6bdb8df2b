using System.Net;
using Loom.Core.Model;
using Loom.Core.Services;

namespace Loom.Core.Tests.Services;

public sealed class NodePortAllocatorTests
{
    private static Service Svc(string name, ServiceType type, params ServicePort[] ports) => new()
    {
        Namespace = "default",
        Name = name,
        ClusterIp = IPAddress.Parse("10.96.0.100"),
        Type = type,
        Ports = ports,
    };

    [Fact]
    public void The_default_range_is_the_api_servers()
    {
        var a = NodePortAllocator.Default;
        Assert.Equal((30000, 32767, "30000-32767"), (a.Min, a.Max, a.RangeText));
        // upstream's offset split: size/32 ports at the bottom, kept for requests
        Assert.Equal(86, a.StaticBand);
    }

    [Fact]
    public void A_requested_port_in_use_or_out_of_range_is_refused_in_the_api_servers_words()
    {
        var a = NodePortAllocator.Default;
        var e = Assert.Throws<NodePortAllocationException>(() => a.Allocate(new HashSet<int> { 31234 }, 31234));
        Assert.Equal((NodePortAllocationError.InUse, "spec.ports[0].nodePort: Invalid value: 31234: provided port is already allocated"), (e.Error, e.Message));
        e = Assert.Throws<NodePortAllocationException>(() => a.Allocate(new HashSet<int>(), 40000, "spec.ports[2].nodePort"));
        Assert.Equal((NodePortAllocationError.OutOfRange, "spec.ports[2].nodePort: Invalid value: 40000: provided port is not in the valid range. The range of valid ports is 30000-32767"), (e.Error, e.Message));
        Assert.Equal(31234, a.Allocate(new HashSet<int> { 31235 }, 31234));
    }

    [Fact]
    public void Unrequested_ports_are_random_free_ones_from_the_upper_band_first()
    {
        var a = new NodePortAllocator(30000, 30099);
        Assert.Equal(16, a.StaticBand);
        var used = new HashSet<int>();
        var random = new Random(1);
        for (var i = 0; i < 84; i++)
        {
            var p = a.Allocate(used, random: random);
            Assert.InRange(p, 30016, 30099);
            Assert.True(used.Add(p));
        }

        // The upper band is full: the low band is next, then the range is full.
        for (var i = 0; i < 16; i++)
        {
            var p = a.Allocate(used, random: random);
            Assert.InRange(p, 30000, 30015);
            Assert.True(used.Add(p));
        }

        var e = Assert.Throws<NodePortAllocationException>(() => a.Allocate(used, random: random));
        Assert.Equal(NodePortAllocationError.Exhausted, e.Error);
        Assert.Contains("range is full", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Picks_are_not_sequential()
    {
        var used = new HashSet<int>();
        var picks = Enumerable.Range(0, 20).Select(_ => { var p = NodePortAllocator.Default.Allocate(used); used.Add(p); return p; }).ToList();
        Assert.NotEqual(picks.Order(), picks);
    }

    [Fact]
    public void Ports_of_one_number_share_a_node_port_and_a_later_request_is_the_shared_one()
    {
        var pool = new NodePortPool(NodePortAllocator.Default, new Random(2));
        var dns = pool.Assign(Svc("dns", ServiceType.NodePort,
            new ServicePort("dns", Protocol.Udp, 53, 53), new ServicePort("dns-tcp", Protocol.Tcp, 53, 53, 30053), new ServicePort("metrics", Protocol.Tcp, 9153, 9153)));
        Assert.Equal([30053, 30053], dns.Ports.Take(2).Select(p => p.NodePort));
        Assert.NotEqual(30053, dns.Ports[2].NodePort);
        Assert.Equal(2, pool.Count);
        Assert.All(pool.Owners.Values, o => Assert.Equal("default/dns", o));
    }

    [Fact]
    public void A_node_port_of_another_service_or_another_port_pair_is_already_allocated()
    {
        var pool = new NodePortPool(NodePortAllocator.Default);
        pool.Assign(Svc("a", ServiceType.NodePort, new ServicePort(null, Protocol.Tcp, 80, 80, 31234)));
        var e = Assert.Throws<NodePortAllocationException>(() => pool.Assign(Svc("b", ServiceType.NodePort, new ServicePort(null, Protocol.Udp, 80, 80, 31234))));
        Assert.Equal("spec.ports[0].nodePort: Invalid value: 31234: provided port is already allocated", e.Message);
        e = Assert.Throws<NodePortAllocationException>(() => pool.Assign(Svc("c", ServiceType.NodePort,
            new ServicePort("x", Protocol.Tcp, 80, 80, 31000), new ServicePort("y", Protocol.Udp, 81, 81, 31000))));
        Assert.Equal("spec.ports[1].nodePort: Invalid value: 31000: provided port is already allocated", e.Message);
        // The refused Services hold nothing.
        Assert.Equal(new Dictionary<int, string> { [31234] = "default/a" }, pool.Owners);
    }

    [Fact]
    public void A_reapply_keeps_the_ports_a_type_change_to_ClusterIP_releases_them()
    {
        var pool = new NodePortPool(NodePortAllocator.Default);
        var desired = Svc("web", ServiceType.LoadBalancer, new ServicePort("http", Protocol.Tcp, 80, 80), new ServicePort("dns", Protocol.Udp, 53, 53)) with { ExternalTrafficPolicy = TrafficPolicy.Local };
        var first = pool.Assign(desired);
        Assert.NotEqual(0, first.HealthCheckNodePort);
        Assert.Equal(3, pool.Count);
        var again = pool.Assign(desired, first);
        Assert.Equal(first.Ports, again.Ports);
        Assert.Equal(first.HealthCheckNodePort, again.HealthCheckNodePort);
        Assert.Equal(3, pool.Count);

        // Cluster policy: no health-check port; the node ports stay.
        var cluster = pool.Assign(desired with { ExternalTrafficPolicy = TrafficPolicy.Cluster }, again);
        Assert.Equal((0, 2), (cluster.HealthCheckNodePort, pool.Count));
        Assert.Equal(first.Ports, cluster.Ports);

        var clusterIp = pool.Assign(desired with { Type = ServiceType.ClusterIP, ExternalTrafficPolicy = TrafficPolicy.Cluster }, cluster);
        Assert.All(clusterIp.Ports, p => Assert.Equal(0, p.NodePort));
        Assert.Equal(0, pool.Count);
    }

    [Fact]
    public void A_failed_reassignment_leaves_the_services_old_ports()
    {
        var pool = new NodePortPool(NodePortAllocator.Default);
        pool.Assign(Svc("a", ServiceType.NodePort, new ServicePort(null, Protocol.Tcp, 80, 80, 31000)));
        var b = pool.Assign(Svc("b", ServiceType.NodePort, new ServicePort(null, Protocol.Tcp, 80, 80, 31001)));
        var before = pool.Owners.ToDictionary();
        Assert.Throws<NodePortAllocationException>(() => pool.Assign(Svc("b", ServiceType.NodePort,
            new ServicePort("x", Protocol.Tcp, 80, 80, 31002), new ServicePort("y", Protocol.Tcp, 81, 81, 31000)), b));
        Assert.Equal(before, pool.Owners);
    }

    [Fact]
    public void A_pool_loaded_from_the_store_keeps_the_first_holder()
    {
        var pool = new NodePortPool(NodePortAllocator.Default);
        pool.Add(Svc("a", ServiceType.NodePort, new ServicePort(null, Protocol.Tcp, 80, 80, 31000)));
        pool.Add(Svc("b", ServiceType.NodePort, new ServicePort(null, Protocol.Tcp, 80, 80, 31000)));
        pool.Add(Svc("c", ServiceType.ClusterIP, new ServicePort(null, Protocol.Tcp, 80, 80, 31001)));
        Assert.Equal(new Dictionary<int, string> { [31000] = "default/a" }, pool.Owners);
        pool.Release("default/a");
        Assert.Equal(0, pool.Count);
    }
}
