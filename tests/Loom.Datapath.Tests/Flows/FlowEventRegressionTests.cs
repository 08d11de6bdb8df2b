using System.Net;
using System.Net.Sockets;
using Loom.Core.Flows;
using Loom.Datapath.Flows;
using Loom.Datapath.Tests.Ebpf;
using Loom.Datapath.Tests.Policy;
using Loom.Linux.Bpf;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Flows;

/// <summary>What a review of the flow-event datapath found: each test failed before its fix.</summary>
public sealed class FlowEventRegressionTests : IDisposable
{
    private readonly FlowLab _f = new();

    public void Dispose() => _f.Dispose();

    [Fact]
    public void Disposing_the_reader_inside_its_handler_frees_the_ring_once_the_poll_returns()
    {
        _f.Configure(enabled: true, FlowAggregation.None);
        Assert.Equal(3, FlowLab.UdpExchange(_f.A, PodIp(1, 2), 3));

        // Before the fix the ring was freed while libbpf walked it: the test host died (SIGSEGV).
        var handled = _f.Reader.Poll(_ => _f.Reader.Dispose(), 300);
        Assert.Equal(1, handled); // the walk stops at the record whose handler disposed
        Assert.Throws<ObjectDisposedException>(() => _f.Reader.Poll(_ => { }, 0));
    }

    [Fact]
    public void Polling_the_reader_inside_its_handler_is_refused()
    {
        _f.Configure(enabled: true, FlowAggregation.None);
        Assert.Equal(1, FlowLab.UdpExchange(_f.A, PodIp(1, 2), 1));

        var e = Assert.Throws<InvalidOperationException>(() => _f.Reader.Poll(_ => _f.Reader.Poll(_ => { }, 0), 300));
        Assert.Contains("may not poll", e.Message, StringComparison.Ordinal);
        Assert.NotEmpty(_f.Drain()); // the reader still works: the rest of the ring is there
    }

    [Fact]
    public void An_event_the_handler_threw_on_is_counted_as_lost()
    {
        _f.Configure(enabled: true, FlowAggregation.None);
        Assert.Equal(1, FlowLab.UdpExchange(_f.A, PodIp(1, 2), 1));
        Assert.Equal(0, _f.Reader.Lost);

        Assert.Throws<FormatException>(() => _f.Reader.Poll(_ => throw new FormatException("handler"), 300));
        Assert.Equal(1, _f.Reader.Lost);
    }

    [Fact]
    public void Replies_on_the_node_devices_are_marked_replies()
    {
        _f.P.Node.Run(() => _f.P.Policy.AttachNodeEgress(_f.P.Lab.Underlay(1)));
        _f.Configure(enabled: true);
        Assert.Equal(PodIp(1, 1).ToString(), PolicyLab.Who(_f.A, PodIp(2, 1)));

        var events = _f.Drain().Where(e => e.Type == FlowEventType.Trace).ToList();
        var fromNetwork = events.Where(e => e.Point == ObservationPoint.FromNetwork && e.Source.Equals(PodIp(2, 1))).ToList();
        var toNetwork = events.Where(e => e.Point == ObservationPoint.ToNetwork && e.Source.Equals(PodIp(1, 1))).ToList();
        Assert.NotEmpty(fromNetwork);
        Assert.All(fromNetwork, e => Assert.True(e.Flags.HasFlag(FlowEventMarks.Reply), $"not a reply: {e}"));
        Assert.NotEmpty(toNetwork);
        Assert.All(toNetwork, e => Assert.False(e.Flags.HasFlag(FlowEventMarks.Reply), $"a reply: {e}"));
    }

    [Fact]
    public void A_shared_pin_of_another_shape_is_refused_not_replaced()
    {
        var dir = Path.Combine(Path.GetDirectoryName(_f.EventsDirectory)!, "other-events"); // removed with the lab
        Directory.CreateDirectory(dir);
        var agg = Path.Combine(dir, FlowEventMaps.Aggregation);
        uint id;
        using (var ring = BpfMap.OpenPinned(Path.Combine(_f.EventsDirectory, FlowEventMaps.Ring)))
        {
            ring.Pin(agg); // a ring where loom_ev_agg (a hash) is expected
            id = ring.Id;
        }

        using var obj = BpfObject.Open(Path.Combine(EbpfLab.ObjectDirectory, FlowEventMaps.ObjectFile));
        FlowEventMaps.Share(obj, dir);
        var e = Assert.Throws<InvalidOperationException>(() => obj.Load());
        Assert.Contains(agg, e.Message, StringComparison.Ordinal);
        Assert.Contains("RingBuf", e.Message, StringComparison.Ordinal);
        using var still = BpfMap.OpenPinned(agg);
        Assert.Equal(id, still.Id);
    }

    [Fact]
    public void The_reader_moves_to_pins_created_again()
    {
        _f.Configure(enabled: true, FlowAggregation.None);
        Assert.Equal(1, FlowLab.UdpExchange(_f.A, PodIp(1, 2), 1)); // events in the old ring, which policy keeps

        FlowEventMaps.Remove(_f.EventsDirectory);
        FlowEventMaps.Ensure(_f.EventsDirectory, EbpfLab.ObjectDirectory);
        using (var lost = BpfMap.OpenPinned(Path.Combine(_f.EventsDirectory, FlowEventMaps.Lost)))
        {
            lost.AsPerCpu<uint, ulong>().UpdateAll(0, 7); // stands for the new ring's producers
        }

        Assert.Equal(0, _f.Reader.Lost);
        var events = _f.Drain();
        Assert.Contains(events, e => e.Point == ObservationPoint.FromEndpoint && e.Source.Equals(PodIp(1, 1))); // the old ring drained
        Assert.Equal(7L * BpfFs.PossibleCpus, _f.Reader.Lost);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_underlay_leaves_out_the_tunnels_outer_packets_once_it_knows_their_port(bool portSet)
    {
        const int vxlanPort = 8473; // RoutedNodesLab's VXLAN port
        var vxlan = _f.P.Lab.UseVxlanOverlay();
        _f.P.Node.Run(() =>
        {
            _f.P.Policy.AttachNodeEgress(vxlan[0], overlay: true);
            _f.P.Policy.AttachNodeEgress(_f.P.Lab.Underlay(1));
            _f.P.Policy.SetTunnelPorts(portSet ? [vxlanPort] : []);
        });
        _f.Configure(enabled: true);
        Assert.Equal(PodIp(1, 1).ToString(), PolicyLab.Who(_f.A, PodIp(2, 1)));

        var events = _f.Drain();
        Assert.Contains(events, e => e.Point == ObservationPoint.ToOverlay && e.Source.Equals(PodIp(1, 1)));
        var outer = events.Where(e => e.Point is ObservationPoint.ToNetwork or ObservationPoint.FromNetwork
            && e.Protocol == 17 && e.DestinationPort == vxlanPort).ToList();
        Assert.True(portSet ? outer.Count == 0 : outer.Count > 0, $"outer VXLAN traces: {outer.Count}\n{string.Join("\n", outer)}");
    }

    [Fact]
    public void Tunnel_ports_are_checked()
    {
        Assert.Throws<ArgumentException>(() => _f.P.Policy.SetTunnelPorts([1, 2, 3, 4, 5]));
        Assert.Throws<ArgumentOutOfRangeException>(() => _f.P.Policy.SetTunnelPorts([0]));
        _f.P.Policy.SetTunnelPorts([8472, 8472, 4789]);
        var cfg = _f.P.Policy.Loaded.Map<uint, PolConfig>(PolicyMaps.Config).Lookup(0);
        Assert.Equal(((ushort)0x1821, (ushort)0xb512, (ushort)0), (cfg.TunnelPort0, cfg.TunnelPort1, cfg.TunnelPort2));
        Assert.NotEqual(0u, cfg.Flags); // SetConfig's part kept
    }

    [Fact]
    public void A_new_connection_on_a_reused_tuple_gets_its_reply_traced()
    {
        const int clientPort = 40123;
        _f.Configure(enabled: true, FlowAggregation.Medium);
        for (var i = 0; i < 2; i++)
        {
            using var s = _f.A.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            s.Bind(new IPEndPoint(IPAddress.Any, clientPort));
            s.Connect(new IPEndPoint(PodIp(1, 2), Port));
            s.ReceiveTimeout = 3000;
            var buf = new byte[64];
            while (s.Receive(buf) > 0)
            {
            }
        }

        var events = _f.Drain();
        var all = string.Join("\n", events.Where(e => e.SourcePort == clientPort || e.DestinationPort == clientPort));
        var syns = events.Count(e => e.Type == FlowEventType.Trace && e.Point == ObservationPoint.FromEndpoint
            && e.SourcePort == clientPort && (e.TcpFlags & 0x12) == 0x02);
        var synAcks = events.Count(e => e.Type == FlowEventType.Trace && e.Point == ObservationPoint.ToEndpoint
            && e.DestinationPort == clientPort && (e.TcpFlags & 0x12) == 0x12);
        Assert.True(syns == 2, $"SYN traces {syns}\n{all}");
        Assert.True(synAcks == 2, $"SYN-ACK traces at to-endpoint: {synAcks} (2 connections)\n{all}");
    }
}
