using System.Net;
using Loom.Core.Flows;
using Loom.Core.Model;
using Loom.Datapath.Flows;
using Loom.Datapath.Services.Ebpf;
using Loom.Datapath.Tests.Ebpf;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Tests.Flows;

/// <summary>
/// Flow events from lb4.o (<see cref="EbpfLab"/>, routed pods; pod 1 the backend, pod 3 the client): a translation with
/// the frontend in OriginalDestination, on the per-packet path and at the socket, and a drop where a service has no
/// backend. The events maps are shared in a per-run events directory.
/// </summary>
public sealed class FlowTranslationTests : IDisposable
{
    private static readonly IPAddress Web = IPAddress.Parse("10.96.0.100");
    private static readonly IPAddress Empty = IPAddress.Parse("10.96.0.50");

    private readonly string _root = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("flows"));
    private readonly EbpfLab _lab = new(bridge: false, 3, 80);
    private readonly List<IDisposable> _owned = [];

    private string EventsDirectory => FlowEventMaps.DirectoryFor(_root);

    public void Dispose()
    {
        foreach (var d in _owned)
        {
            d.Dispose();
        }

        _lab.Dispose();
        BpfFs.RemoveTree(_root);
    }

    [Fact]
    public void A_service_connection_from_a_pod_yields_one_translation_with_the_frontend()
    {
        var reader = Start(cgroup: false);
        Assert.Equal("pod1", _lab.Tcp(3, Web, 80));

        var events = Drain(reader);
        var t = Assert.Single(events, e => e.Type == FlowEventType.Translation);
        Assert.Equal((ObservationPoint.FromEndpoint, _lab.PodIp(3), _lab.PodIp(1), (ushort)80), (t.Point, t.Source, t.Destination, t.DestinationPort));
        Assert.Equal((Web, (ushort)80), (t.OriginalDestination, t.OriginalDestinationPort));
        Assert.True(t.Flags.HasFlag(FlowEventMarks.Translated));
        Assert.Equal(_lab.HostIfindex(3), (int)t.Ifindex);
        Assert.Equal(0x02, t.TcpFlags);

        Assert.Equal("refused", _lab.TcpOutcome(3, Empty, 80).Outcome);
        var drop = Assert.Single(Drain(reader), e => e.Type == FlowEventType.Drop);
        Assert.Equal((DropReason.NoServiceBackend, _lab.PodIp(3), Empty), (drop.DropReason, drop.Source, drop.Destination));
    }

    [Fact]
    public void A_socket_connect_to_a_service_yields_a_translation_at_the_socket()
    {
        var reader = Start(cgroup: true);
        var r = _lab.BashInCgroup(3, $"exec 3<>/dev/tcp/{Web}/80 && head -n1 <&3");
        Assert.True(r.Ok, r.ToString());
        Assert.Equal("pod1", r.Stdout.Trim());

        var t = Assert.Single(Drain(reader), e => e.Type == FlowEventType.Translation);
        Assert.Equal((ObservationPoint.Socket, _lab.PodIp(1), (ushort)80, Web, (ushort)80),
            (t.Point, t.Destination, t.DestinationPort, t.OriginalDestination, t.OriginalDestinationPort));
        Assert.Equal(0u, t.Ifindex);

        Assert.False(_lab.BashInCgroup(3, $"exec 3<>/dev/tcp/{Empty}/80").Ok);
        var drop = Assert.Single(Drain(reader), e => e.Type == FlowEventType.Drop);
        Assert.Equal((DropReason.NoServiceBackend, ObservationPoint.Socket, Empty), (drop.DropReason, drop.Point, drop.Destination));
    }

    private FlowEventReader Start(bool cgroup)
    {
        var backend = new EbpfServiceBackend(new EbpfServiceOptions
        {
            PinDirectory = _lab.PinDirectory,
            ObjectDirectory = EbpfLab.ObjectDirectory,
            EventsDirectory = EventsDirectory,
            CgroupPath = cgroup ? _lab.Cgroup : null,
            Interfaces = () => _lab.HostIfindexes,
        });
        _owned.Add(backend);
        _lab.InNode(() => backend.Sync([_lab.Service("web", Web.ToString(), 80, [1]), _lab.Service("empty", Empty.ToString(), 80, [])]));
        new FlowEventConfig(true, FlowAggregation.Medium, FlowEventConfig.DefaultInterval).Write(EventsDirectory, EbpfLab.ObjectDirectory);
        var reader = FlowEventReader.Open(EventsDirectory, EbpfLab.ObjectDirectory);
        _owned.Insert(0, reader);
        return reader;
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
