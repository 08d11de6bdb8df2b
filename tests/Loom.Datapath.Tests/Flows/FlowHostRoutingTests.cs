using Loom.Core.Flows;
using Loom.Datapath.Routing;
using Loom.Datapath.Tests.Ebpf;
using Loom.Linux.Bpf;
using static Loom.Datapath.Tests.Policy.PolicyLab;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Flows;

/// <summary>
/// host_routing.o's flow events beside policy.o's (<see cref="FlowLab"/>): to-stack for what it leaves to the node's
/// stack, to-endpoint for what it hands into a pod with bpf_redirect_peer (policy's to-endpoint hook is skipped then).
/// </summary>
public sealed class FlowHostRoutingTests : IDisposable
{
    private readonly FlowLab _f = new();
    private readonly BpfHostRouting _routing;

    public FlowHostRoutingTests()
    {
        _routing = new BpfHostRouting(new HostRoutingOptions
        {
            PinDirectory = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("hr")),
            ObjectDirectory = EbpfLab.ObjectDirectory,
            EventsDirectory = _f.EventsDirectory,
            PodDelivery = PodDelivery.Peer,
        });
        _f.P.Node.Run(() =>
        {
            _routing.AttachPod(_f.P.Lab.Lxc(1, 1));
            _routing.AttachPod(_f.P.Lab.Lxc(1, 2));
        });
    }

    public void Dispose()
    {
        try
        {
            _f.P.Node.Run(_routing.Remove);
        }
        finally
        {
            _f.Dispose();
        }
    }

    [Fact]
    public void Peer_delivery_is_traced_to_endpoint_and_a_packet_for_the_node_to_stack()
    {
        _f.Configure(enabled: true);
        Assert.Equal(PodIp(1, 1).ToString(), Who(_f.A, PodIp(1, 2)));
        Assert.True(Ping(_f.A, RouterIp(1)));

        var events = _f.Drain();
        var delivered = events.Where(e => e.Type == FlowEventType.Trace && e.Point == ObservationPoint.ToEndpoint && e.Destination.Equals(PodIp(1, 2))).ToList();
        Assert.NotEmpty(delivered);
        Assert.All(delivered, e => Assert.Equal(_f.P.Lab.Lxc(1, 1), (int)e.Ifindex)); // host routing on A's veth, not policy on B's
        Assert.Equal(0x02, delivered[0].TcpFlags);
        var toStack = Assert.Single(events, e => e.Type == FlowEventType.Trace && e.Point == ObservationPoint.ToStack);
        Assert.Equal((PodIp(1, 1), RouterIp(1), (byte)1), (toStack.Source, toStack.Destination, toStack.Protocol));
    }
}
