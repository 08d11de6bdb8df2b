using System.Net;
using Loom.Core.Policy;
using Loom.Datapath.Policy;
using Loom.Testing;
using static Loom.Datapath.Tests.Policy.PolicyLab;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Policy;

/// <summary>
/// Egress to a Service kube-proxy translates after tc (an iptables DNAT in node 1 from a ClusterIP to a pod): the
/// verdict is taken on the translated packet, at the local backend's veth or at the underlay for a remote backend, by
/// the client's egress rules for the backend's identity; the reverse-NATed replies pass the client's isolated ingress.
/// </summary>
public sealed class PolicyServiceTests : IDisposable
{
    private static readonly IPAddress LocalVip = IPAddress.Parse("10.96.0.10");
    private static readonly IPAddress RemoteVip = IPAddress.Parse("10.96.0.11");
    private const int VipPort = 80;

    private readonly PolicyLab _p = new();

    public PolicyServiceTests()
    {
        Dnat(LocalVip, PodIp(1, 2));
        Dnat(RemoteVip, PodIp(2, 1));
    }

    public void Dispose() => _p.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Service_egress_is_judged_after_the_dnat_by_the_backends_identity(bool overlay)
    {
        // Native routing: remote backends are reached out of the underlay; overlay: out of the VXLAN device, whose
        // egress sees the inner frame.
        var nodeEgress = overlay ? _p.Lab.UseVxlanOverlay()[0] : _p.Lab.Underlay(1);
        _p.Node.Run(() => _p.Policy.AttachNodeEgress(nodeEgress));
        var a = _p.Lab.Pod(1, 1);
        _p.Endpoint(1, ingress: true, egress: true, [Tcp(PolicyDirection.Egress, Identity(1, 2), Port)]);

        Assert.Equal(PodIp(1, 1).ToString(), Who(a, LocalVip, VipPort));
        Assert.Null(Who(a, RemoteVip, VipPort));
        var c = _p.Counters();
        Assert.True(c[PolicyReason.Deferred] > 0);
        Assert.True(c[PolicyReason.DeferredAllowed] > 0);
        Assert.True(c[PolicyReason.DeferredDropped] > 0);
        Assert.Equal(0UL, c[PolicyReason.DroppedIngress]);

        // The remote backend allowed too: its verdict is taken at the underlay, its replies come back reverse-NATed.
        _p.Rules(1, Tcp(PolicyDirection.Egress, Identity(1, 2), Port), Tcp(PolicyDirection.Egress, Identity(2, 1), Port));
        Assert.Equal(PodIp(1, 1).ToString(), Who(a, RemoteVip, VipPort));

        // The wrong port of the right backend: denied.
        _p.Rules(1, Tcp(PolicyDirection.Egress, Identity(1, 2), 7001));
        Assert.Null(Who(a, LocalVip, VipPort));
    }

    [Fact]
    public void Service_traffic_of_an_unenforced_endpoint_passes()
    {
        _p.Node.Run(() => _p.Policy.AttachNodeEgress(_p.Lab.Underlay(1)));
        var a = _p.Lab.Pod(1, 1);
        _p.Endpoint(1, ingress: true, egress: false);

        Assert.Equal(PodIp(1, 1).ToString(), Who(a, LocalVip, VipPort));
        Assert.Equal(PodIp(1, 1).ToString(), Who(a, RemoteVip, VipPort));
        var c = _p.Counters();
        Assert.True(c[PolicyReason.Deferred] > 0);
        Assert.Equal(0UL, c[PolicyReason.DeferredDropped]);
    }

    private void Dnat(IPAddress vip, IPAddress backend)
    {
        var r = Shell.InNetns(_p.Node.Name, [Shell.Require("iptables"), "-w", "-t", "nat", "-A", "PREROUTING", "-d", vip + "/32", "-p", "tcp",
            "--dport", VipPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "-j", "DNAT", "--to-destination", backend + ":" + Port]);
        Assert.True(r.Ok, r.ToString());
    }
}
