using Loom.Core.Policy;
using Loom.Datapath.Policy;
using Loom.Datapath.Routing;
using Loom.Datapath.Tests.Ebpf;
using Loom.Linux.Bpf;
using static Loom.Datapath.Tests.Policy.PolicyLab;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Policy;

/// <summary>
/// The policy programs (0x4e) on the same hooks as eBPF host routing (0x50) with egress delivery: pod traffic is
/// redirected past the node's stack and still judged on both sides, on one node and from the other.
/// </summary>
public sealed class PolicyWithHostRoutingTests : IDisposable
{
    private readonly PolicyLab _p = new();
    private readonly BpfHostRouting _routing = new(new HostRoutingOptions
    {
        PinDirectory = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("hr")),
        ObjectDirectory = EbpfLab.ObjectDirectory,
        PodDelivery = PodDelivery.Egress,
    });

    public void Dispose()
    {
        try
        {
            _p.Node.Run(_routing.Remove);
        }
        finally
        {
            _p.Dispose();
        }
    }

    [Fact]
    public void Redirected_pod_traffic_is_still_judged_at_both_ends()
    {
        _p.Node.Run(() =>
        {
            _routing.AttachPod(_p.Lab.Lxc(1, 1));
            _routing.AttachPod(_p.Lab.Lxc(1, 2));
            _routing.AttachUnderlay(_p.Lab.Underlay(1));
        });
        _p.Endpoint(2, ingress: true, egress: true, [Tcp(PolicyDirection.Ingress, Identity(1, 1), Port), Tcp(PolicyDirection.Ingress, Identity(2, 1), Port)]);

        Assert.Equal(PodIp(1, 1).ToString(), Who(_p.Lab.Pod(1, 1), PodIp(1, 2)));
        Assert.Equal(PodIp(2, 1).ToString(), Who(_p.Lab.Pod(2, 1), PodIp(1, 2)));
        Assert.False(Connects(_p.Lab.Pod(2, 2), PodIp(1, 2)));
        Assert.False(Connects(_p.Lab.Pod(1, 2), PodIp(1, 1)), "pod 2's egress allows nothing new");

        var hr = _p.Node.Run(_routing.Counters);
        Assert.True(hr[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectEgress] > 0, hr.ToString());
        Assert.True(hr[HostRoutingProgram.FromUnderlay, HostRoutingVerdict.RedirectEgress] > 0, hr.ToString());
        var c = _p.Counters();
        Assert.True(c[PolicyReason.DroppedIngress] > 0);
        Assert.True(c[PolicyReason.DroppedEgress] > 0);
        Assert.True(c[PolicyReason.AllowedReply] > 0);
    }
}
