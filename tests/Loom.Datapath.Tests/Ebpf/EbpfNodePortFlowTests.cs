using System.Net;
using Loom.Core.Flows;
using Loom.Core.Model;
using Loom.Datapath.Flows;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// Flow events of lb4_from_net (<see cref="NodePortLab"/>, routed): a client's node-port connection yields one translation
/// at from-network with the node port as the original destination; a Local service without a local backend a drop
/// "no service backend".
/// </summary>
public sealed class EbpfNodePortFlowTests : IDisposable
{
    private readonly NodePortLab _np = new(bridge: false);
    private readonly string _root = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("npflows"));
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (var d in _owned)
        {
            d.Dispose();
        }

        _np.Dispose();
        BpfFs.RemoveTree(_root);
    }

    [Fact]
    public void A_node_port_connection_is_a_translation_at_from_network_and_a_local_service_without_local_backend_a_drop()
    {
        var events = FlowEventMaps.DirectoryFor(_root);
        var b = new EbpfServiceBackend(new EbpfServiceOptions
        {
            PinDirectory = _np.Lab.PinDirectory,
            ObjectDirectory = EbpfLab.ObjectDirectory,
            EventsDirectory = events,
            NodePortInterface = "eth1",
            Proxy = new ServiceProxyOptions { NodeIps = [NodePortLab.NodeIp] },
        });
        _owned.Add(b);
        var local = NodePortLab.Service(TrafficPolicy.Cluster, Protocol.Tcp, _np.Local);
        var none = NodePortLab.Service(TrafficPolicy.Local, Protocol.Tcp, NodePortLab.RemoteBackend) with
        {
            Name = new ServicePortName("default", "np-local", null),
            Frontend = new Frontend(IPAddress.Parse("10.96.0.51"), Protocol.Tcp, 80),
            NodePort = 30081,
        };
        _np.Lab.InNode(() => b.Sync([local, none]));
        new FlowEventConfig(true, FlowAggregation.Medium, FlowEventConfig.DefaultInterval).Write(events, EbpfLab.ObjectDirectory);
        var reader = FlowEventReader.Open(events, EbpfLab.ObjectDirectory);
        _owned.Insert(0, reader);

        Assert.Equal("local 192.168.10.1", NodePortLab.Tcp(_np.Client, NodePortLab.NodeIp, 30080));
        var t = Assert.Single(Drain(reader), e => e.Type == FlowEventType.Translation);
        Assert.Equal((ObservationPoint.FromNetwork, NodePortLab.ClientIp, _np.Lab.PodIp(1), (ushort)NodePortLab.Port), (t.Point, t.Source, t.Destination, t.DestinationPort));
        Assert.Equal((NodePortLab.NodeIp, (ushort)30080), (t.OriginalDestination, t.OriginalDestinationPort));

        Assert.Equal("timeout", NodePortLab.Tcp(_np.Client, NodePortLab.NodeIp, 30081, 1000));
        var drops = Drain(reader).Where(e => e.Type == FlowEventType.Drop).ToList(); // a SYN retransmission may add one
        Assert.NotEmpty(drops);
        Assert.All(drops, d => Assert.Equal((DropReason.NoServiceBackend, ObservationPoint.FromNetwork, NodePortLab.NodeIp), (d.DropReason, d.Point, d.Destination)));
    }

    private static List<FlowEvent> Drain(FlowEventReader reader)
    {
        var events = new List<FlowEvent>();
        while (reader.Poll(events.Add, 300) > 0)
        {
        }

        return events;
    }
}
