using System.Net;
using Loom.Core.Model;
using Loom.Datapath.Services;

namespace Loom.Datapath.Tests;

public sealed class ServiceModelTests
{
    private static Endpoint Pod(string name, string ip, bool ready = true, string ns = "default", string app = "web") => new()
    {
        Namespace = ns,
        Name = name,
        Node = "k8s-w1",
        ContainerId = name,
        IPs = [IPAddress.Parse(ip)],
        Labels = new Dictionary<string, string> { ["app"] = app },
        Ready = ready,
    };

    private static Service Web(params ServicePort[] ports) => new()
    {
        Namespace = "default",
        Name = "webpod",
        ClusterIp = IPAddress.Parse("10.96.0.100"),
        Ports = ports.Length == 0 ? [new ServicePort(null, Protocol.Tcp, 80, 8080)] : ports,
        Selector = new Dictionary<string, string> { ["app"] = "web" },
    };

    [Fact]
    public void Ready_matching_pods_in_the_namespace_become_backends_on_the_target_port()
    {
        var states = ServiceModel.Compute(
            [Web()],
            [Pod("b", "10.244.2.2"), Pod("a", "10.244.1.2"), Pod("c", "10.244.3.2", ready: false), Pod("d", "10.244.4.2", ns: "other"), Pod("e", "10.244.5.2", app: "db")]);
        var s = Assert.Single(states);
        Assert.Equal(new ServicePortName("default", "webpod", null), s.Name);
        Assert.Equal(new Frontend(IPAddress.Parse("10.96.0.100"), Protocol.Tcp, 80), s.Frontend);
        Assert.Equal([new BackendAddress(IPAddress.Parse("10.244.1.2"), 8080), new BackendAddress(IPAddress.Parse("10.244.2.2"), 8080)], s.Backends);
    }

    [Fact]
    public void Each_port_is_its_own_state_and_target_zero_means_the_service_port()
    {
        var states = ServiceModel.Compute([Web(new ServicePort("http", Protocol.Tcp, 80, 0), new ServicePort("dns", Protocol.Udp, 53, 5353))], [Pod("a", "10.244.1.2")]);
        Assert.Equal(["default/webpod:dns", "default/webpod:http"], states.Select(s => s.Name.ToString()));
        Assert.Equal(5353, states[0].Backends[0].Port);
        Assert.Equal(80, states[1].Backends[0].Port);
    }

    [Fact]
    public void Empty_selector_selects_nothing_and_affinity_is_carried()
    {
        var svc = Web() with { Selector = new Dictionary<string, string>(), SessionAffinity = SessionAffinity.ClientIP, SessionAffinityTimeoutSeconds = 60 };
        var s = Assert.Single(ServiceModel.Compute([svc], [Pod("a", "10.244.1.2")]));
        Assert.Empty(s.Backends);
        Assert.Equal((SessionAffinity.ClientIP, 60), (s.SessionAffinity, s.AffinityTimeoutSeconds));
    }

    [Fact]
    public void States_compare_by_value_including_backends()
    {
        var a = ServiceModel.Compute([Web()], [Pod("a", "10.244.1.2"), Pod("b", "10.244.2.2")]);
        var b = ServiceModel.Compute([Web()], [Pod("b", "10.244.2.2"), Pod("a", "10.244.1.2")]);
        var c = ServiceModel.Compute([Web()], [Pod("a", "10.244.1.2")]);
        Assert.Equal(a[0], b[0]);
        Assert.Equal(a[0].GetHashCode(), b[0].GetHashCode());
        Assert.NotEqual(a[0], c[0]);
    }
}
