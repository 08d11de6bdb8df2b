using System.Net;
using Loom.Core.Flows;
using Loom.Datapath.Flows;
using Loom.Datapath.Masquerade;
using Loom.Datapath.Tests.Ebpf;
using Loom.Datapath.Tests.Routing;
using Loom.Linux.Bpf;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Flows;

/// <summary>masq.o's flow event: a drop "no NAT port" when its port range (here one port) is used up.</summary>
public sealed class FlowMasqueradeTests : IDisposable
{
    private readonly string _root = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("flows"));
    private readonly RoutedNodesLab _lab = new();
    private BpfMasquerade? _masq;

    public void Dispose()
    {
        try
        {
            if (_masq is { } m)
            {
                _lab.Node(1).Run(m.Remove);
            }

            _lab.Dispose();
        }
        finally
        {
            BpfFs.RemoveTree(_root);
        }
    }

    [Fact]
    public void A_flow_without_a_free_nat_port_is_a_nat_no_port_drop()
    {
        var events = FlowEventMaps.DirectoryFor(_root);
        _masq = new BpfMasquerade(new MasqueradeOptions
        {
            NodeIp = NodeIp(1),
            PodCidr = IPNetwork.Parse(PodPool),
            NonMasqueradeCidrs = [IPNetwork.Parse(PodPool)],
            PortMin = 62000,
            PortMax = 62000,
            PinDirectory = Path.Combine(_root, "masq"),
            ObjectDirectory = EbpfLab.ObjectDirectory,
            EventsDirectory = events,
        });
        _lab.Node(1).Run(() => _masq.Attach(_lab.Underlay(1)));
        new FlowEventConfig(true, FlowAggregation.Medium, FlowEventConfig.DefaultInterval).Write(events, EbpfLab.ObjectDirectory);
        using var reader = FlowEventReader.Open(events, EbpfLab.ObjectDirectory);

        Assert.Equal(NodeIp(1).ToString(), Udp(_lab.Pod(1, 1), External)); // takes the only port towards the server
        Assert.Null(Udp(_lab.Pod(1, 2), External, timeoutMs: 500));

        var drops = new List<FlowEvent>();
        while (reader.Poll(e => drops.Add(e), 300) > 0)
        {
        }

        var d = Assert.Single(drops, e => e.Type == FlowEventType.Drop);
        Assert.Equal((DropReason.NatNoPort, ObservationPoint.ToNetwork, PodIp(1, 2), External, (ushort)Port),
            (d.DropReason, d.Point, d.Source, d.Destination, d.DestinationPort));
        Assert.Equal(_lab.Underlay(1), (int)d.Ifindex);
    }
}
