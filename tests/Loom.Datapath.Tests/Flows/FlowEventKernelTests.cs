using System.Net;
using Loom.Core.Flows;
using Loom.Core.Policy;
using Loom.Datapath.Flows;
using Loom.Datapath.Policy;
using Loom.Datapath.Tests.Ebpf;
using Loom.Linux.Bpf;
using static Loom.Datapath.Tests.Policy.PolicyLab;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Flows;

/// <summary>
/// Flow events from policy.o on real traffic between node 1's pods (<see cref="FlowLab"/>): drops with their reason,
/// verdicts on new connections, traces aggregated (or not), nothing when off, lost events counted, the shared pins.
/// </summary>
public sealed class FlowEventKernelTests : IDisposable
{
    private readonly FlowLab _f = new();

    public void Dispose() => _f.Dispose();

    private static IPAddress PodA => PodIp(1, 1);

    private static IPAddress PodB => PodIp(1, 2);

    [Fact]
    public void A_denied_connection_yields_a_drop_with_the_reason_both_addresses_the_endpoint_and_identities()
    {
        _f.P.Endpoint(2, ingress: true, egress: false);
        _f.Configure(enabled: true);
        Assert.False(Connects(_f.A, PodB));

        var events = _f.Drain();
        var drops = events.Where(e => e.Type == FlowEventType.Drop).ToList();
        Assert.NotEmpty(drops); // the SYN and its retransmissions: drops are never aggregated
        var d = drops[0];
        Assert.Equal(DropReason.PolicyDenied, d.DropReason);
        Assert.Equal(ObservationPoint.ToEndpoint, d.Point);
        Assert.Equal((PodA, PodB, (ushort)Port), (d.Source, d.Destination, d.DestinationPort));
        Assert.Equal(6, d.Protocol);
        Assert.Equal(0x02, d.TcpFlags);
        Assert.Equal(2, d.EndpointId);
        Assert.Equal((Identity(1, 1), Identity(1, 2)), (d.SourceIdentity, d.DestinationIdentity));
        Assert.False(d.Flags.HasFlag(FlowEventMarks.Egress));
        Assert.Equal(_f.P.Lab.Lxc(1, 2), (int)d.Ifindex);

        var verdict = Assert.Single(events, e => e.Type == FlowEventType.Policy && e.SourcePort == d.SourcePort && e.KtimeNs <= d.KtimeNs);
        Assert.False(verdict.Flags.HasFlag(FlowEventMarks.Allowed));
        Assert.Equal(2, verdict.EndpointId);
        Assert.DoesNotContain(events, e => e.Type == FlowEventType.Trace && e.Point == ObservationPoint.ToEndpoint && e.Destination.Equals(PodB));
    }

    [Fact]
    public void An_egress_denial_says_egress_and_a_spoofed_source_is_an_invalid_source_drop()
    {
        _f.P.Endpoint(1, ingress: false, egress: true);
        _f.Configure(enabled: true);
        Assert.False(Connects(_f.A, PodB));
        var d = _f.Drain().First(e => e.Type == FlowEventType.Drop);
        Assert.Equal((DropReason.PolicyDenied, ObservationPoint.FromEndpoint, (ushort)1), (d.DropReason, d.Point, d.EndpointId));
        Assert.True(d.Flags.HasFlag(FlowEventMarks.Egress));
        Assert.Equal(Identity(1, 1), d.SourceIdentity);

        // Pod A's endpoint checks its address: one from another address is spoofed.
        _f.P.Node.Run(() => _f.P.Policy.SetEndpoint(_f.P.Lab.Lxc(1, 1), 1, Identity(1, 1), false, false, IPAddress.Parse("10.245.1.99")));
        Assert.False(Connects(_f.A, PodB));
        var spoofed = _f.Drain().First(e => e.Type == FlowEventType.Drop);
        Assert.Equal((DropReason.InvalidSource, PodA), (spoofed.DropReason, spoofed.Source));
    }

    [Fact]
    public void An_allowed_connection_yields_one_verdict_and_traces_of_its_flag_changes_only()
    {
        _f.P.Endpoint(2, ingress: true, egress: false, [Tcp(PolicyDirection.Ingress, Identity(1, 1), Port)]);
        _f.Configure(enabled: true);
        Assert.Equal(PodA.ToString(), Who(_f.A, PodB));

        var events = _f.Drain();
        var verdict = Assert.Single(events, e => e.Type == FlowEventType.Policy);
        Assert.True(verdict.Flags.HasFlag(FlowEventMarks.Allowed));
        Assert.Equal((ObservationPoint.ToEndpoint, (ushort)2, Identity(1, 1), Identity(1, 2)),
            (verdict.Point, verdict.EndpointId, verdict.SourceIdentity, verdict.DestinationIdentity));
        Assert.Equal((byte)PolicyReason.AllowedByRule, verdict.Reason);

        var fromA = events.Where(e => e.Type == FlowEventType.Trace && e.Point == ObservationPoint.FromEndpoint && e.Source.Equals(PodA)).ToList();
        Assert.NotEmpty(fromA);
        Assert.Equal(0x02, fromA[0].TcpFlags); // the SYN first
        Assert.Equal((Identity(1, 1), (ushort)1), (fromA[0].SourceIdentity, fromA[0].EndpointId));
        // Only packets that brought a flag not seen yet (SYN, ACK, FIN, RST): never two traces of one flag set.
        Assert.InRange(fromA.Count, 2, 4);
        Assert.Equal(fromA.Count, fromA.Select(e => e.TcpFlags & 0x17).Distinct().Count());

        var replies = events.Where(e => e.Type == FlowEventType.Trace && e.Point == ObservationPoint.FromEndpoint && e.Source.Equals(PodB)).ToList();
        Assert.NotEmpty(replies);
        Assert.All(replies, r => Assert.True(r.Flags.HasFlag(FlowEventMarks.Reply), $"{r}"));
        Assert.Contains(events, e => e.Type == FlowEventType.Trace && e.Point == ObservationPoint.ToEndpoint && e.Destination.Equals(PodB));
    }

    [Fact]
    public void Medium_aggregation_traces_a_flow_once_and_none_traces_every_packet()
    {
        _f.Configure(enabled: true, FlowAggregation.Medium);
        Assert.Equal(5, FlowLab.UdpExchange(_f.A, PodB, 5));
        var medium = Traces(_f.Drain());
        Assert.Equal(1, medium.Count(e => e.Point == ObservationPoint.FromEndpoint && e.Source.Equals(PodA)));
        Assert.Equal(1, medium.Count(e => e.Point == ObservationPoint.ToEndpoint && e.Destination.Equals(PodA)));

        _f.Configure(enabled: true, FlowAggregation.None);
        Assert.Equal(5, FlowLab.UdpExchange(_f.A, PodB, 5));
        var none = Traces(_f.Drain());
        Assert.Equal(5, none.Count(e => e.Point == ObservationPoint.FromEndpoint && e.Source.Equals(PodA)));
        Assert.Equal(5, none.Count(e => e.Point == ObservationPoint.ToEndpoint && e.Destination.Equals(PodB)));
        Assert.Equal(5, none.Count(e => e.Point == ObservationPoint.FromEndpoint && e.Source.Equals(PodB)));
        Assert.Equal(5, none.Count(e => e.Point == ObservationPoint.ToEndpoint && e.Destination.Equals(PodA)));
    }

    [Fact]
    public void Events_off_emit_nothing()
    {
        _f.P.Endpoint(2, ingress: true, egress: false);
        _f.Configure(enabled: false);
        Assert.True(Connects(_f.P.Lab.Pod(1, 1), PodIp(2, 1)));
        Assert.False(Connects(_f.A, PodB));
        Assert.Empty(_f.Drain());
        Assert.Equal(0, _f.Reader.Lost);
    }

    [Fact]
    public void The_node_devices_trace_to_network_and_from_network()
    {
        _f.P.Node.Run(() => _f.P.Policy.AttachNodeEgress(_f.P.Lab.Underlay(1)));
        _f.Configure(enabled: true);
        Assert.Equal(PodA.ToString(), Who(_f.A, PodIp(2, 1)));

        var events = Traces(_f.Drain());
        var toNetwork = events.First(e => e.Point == ObservationPoint.ToNetwork && e.Source.Equals(PodA));
        Assert.Equal((PodIp(2, 1), _f.P.Lab.Underlay(1)), (toNetwork.Destination, (int)toNetwork.Ifindex));
        Assert.Contains(events, e => e.Point == ObservationPoint.FromNetwork && e.Source.Equals(PodIp(2, 1)) && e.Destination.Equals(PodA));
    }

    [Fact]
    public void A_tunnel_device_traces_to_overlay_and_from_overlay()
    {
        var vxlan = _f.P.Lab.UseVxlanOverlay();
        _f.P.Node.Run(() => _f.P.Policy.AttachNodeEgress(vxlan[0], overlay: true));
        _f.Configure(enabled: true);
        Assert.Equal(PodA.ToString(), Who(_f.A, PodIp(2, 1)));

        var events = Traces(_f.Drain());
        Assert.Contains(events, e => e.Point == ObservationPoint.ToOverlay && e.Source.Equals(PodA) && e.Ifindex == vxlan[0]);
        Assert.Contains(events, e => e.Point == ObservationPoint.FromOverlay && e.Destination.Equals(PodA));
        Assert.DoesNotContain(events, e => e.Point == ObservationPoint.ToNetwork);
    }

    [Fact]
    public void The_policy_object_reuses_the_shared_pins_and_the_decoder_reads_what_the_kernel_wrote()
    {
        var ring = _f.P.Policy.Loaded.Map(FlowEventMaps.Ring);
        using var pinned = BpfMap.OpenPinned(Path.Combine(_f.EventsDirectory, FlowEventMaps.Ring));
        Assert.Equal(pinned.Id, ring.Id);
        Assert.Contains(FlowEventMaps.Config, _f.P.Policy.Loaded.ReusedMaps);
        Assert.False(File.Exists(Path.Combine(_f.P.Policy.Options.PinDirectory, FlowEventMaps.Ring)));

        _f.Configure(enabled: true, FlowAggregation.None);
        Assert.Equal(1, FlowLab.UdpExchange(_f.A, PodB, 1));
        var records = new List<byte[]>();
        using (var raw = BpfRingBuffer.Open(pinned))
        {
            while (raw.Poll(r => records.Add(r.ToArray()), 300) > 0)
            {
            }
        }

        var bytes = records.First(r => FlowEvent.Decode(r) is { Point: ObservationPoint.FromEndpoint } e && e.Source.Equals(PodA));
        Assert.Equal(FlowEvent.Size, bytes.Length);
        var ev = FlowEvent.Decode(bytes);
        Assert.Equal((FlowEventType.Trace, (byte)17, PodA, PodB, (ushort)Port), (ev.Type, ev.Protocol, ev.Source, ev.Destination, ev.DestinationPort));
        Assert.Equal(PodA.GetAddressBytes(), bytes[20..24]);
        Assert.Equal(new[] { (byte)(ev.SourcePort >> 8), (byte)ev.SourcePort }, bytes[28..30]);
        Assert.Null(ev.OriginalDestination);
        Assert.True(ev.Length >= 28 + 1, "an IPv4 UDP packet with one byte");
        var now = (ulong)(System.Diagnostics.Stopwatch.GetTimestamp() * (1_000_000_000.0 / System.Diagnostics.Stopwatch.Frequency));
        Assert.InRange(ev.KtimeNs, now - 60_000_000_000UL, now); // CLOCK_MONOTONIC, as Stopwatch on Linux
    }

    [Fact]
    public void Events_that_do_not_fit_in_the_ring_are_counted()
    {
        using var small = new FlowLab(ringBytes: 4096);
        Assert.Equal(4096u, small.P.Policy.Loaded.Map(FlowEventMaps.Ring).MaxEntries); // adopted from the pin
        small.Configure(enabled: true, FlowAggregation.None);
        Assert.Equal(0, small.Reader.Lost);

        // About four traces per exchange of 64 bytes each: far more than 4 KiB while nobody reads.
        Assert.Equal(100, FlowLab.UdpExchange(small.A, PodB, 100));
        Assert.True(small.Reader.Lost > 100, $"lost {small.Reader.Lost}");
        Assert.InRange(small.Drain().Count, 1, 4096 / 64);
    }

    private static List<FlowEvent> Traces(List<FlowEvent> events) => events.Where(e => e.Type == FlowEventType.Trace).ToList();
}
