using System.Net;
using System.Net.Sockets;
using Loom.Core.Flows;
using Loom.Datapath.Flows;
using Loom.Datapath.Tests.Ebpf;
using Loom.Datapath.Tests.Policy;
using Loom.Linux.Bpf;
using Loom.Testing;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Flows;

/// <summary>
/// <see cref="PolicyLab"/> with its flow-event maps shared in a per-run events directory (beside the policy's pins, both
/// under one per-run directory on bpffs), and a reader of the ring. Pod (1, i) is endpoint i, not enforced, until a
/// test says otherwise; events start off.
/// </summary>
internal sealed class FlowLab : IDisposable
{
    private readonly string _root = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("flows"));

    /// <param name="ringBytes">The ring's size, chosen before the policy object reuses the pins (it adopts it).</param>
    public FlowLab(uint ringBytes = FlowEventMaps.DefaultRingBytes)
    {
        EventsDirectory = FlowEventMaps.DirectoryFor(_root);
        try
        {
            FlowEventMaps.Ensure(EventsDirectory, EbpfLab.ObjectDirectory, ringBytes);
            P = new PolicyLab(Path.Combine(_root, "policy"), EventsDirectory);
            P.Endpoint(1, ingress: false, egress: false);
            P.Endpoint(2, ingress: false, egress: false);
            Reader = FlowEventReader.Open(EventsDirectory, EbpfLab.ObjectDirectory);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string EventsDirectory { get; }

    public PolicyLab P { get; } = null!;

    public FlowEventReader Reader { get; } = null!;

    public TestNetns A => P.Lab.Pod(1, 1);

    public TestNetns B => P.Lab.Pod(1, 2);

    public void Configure(bool enabled, FlowAggregation aggregation = FlowAggregation.Medium) =>
        new FlowEventConfig(enabled, aggregation, FlowEventConfig.DefaultInterval).Write(EventsDirectory, EbpfLab.ObjectDirectory);

    /// <summary>Every event until the ring stays empty for a while (the programs write as the packets pass).</summary>
    public List<FlowEvent> Drain(int quietMs = 300)
    {
        var events = new List<FlowEvent>();
        while (Reader.Poll(events.Add, quietMs) > 0)
        {
        }

        return events;
    }

    /// <summary><paramref name="count"/> datagrams from <paramref name="from"/> to ip:Port over one socket (one tuple), each answered.</summary>
    public static int UdpExchange(TestNetns from, IPAddress ip, int count)
    {
        using var s = from.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        s.Connect(new IPEndPoint(ip, Port));
        s.ReceiveTimeout = 2000;
        var buf = new byte[64];
        var answered = 0;
        for (var i = 0; i < count; i++)
        {
            s.Send("x"u8);
            try
            {
                s.Receive(buf);
                answered++;
            }
            catch (SocketException)
            {
            }
        }

        return answered;
    }

    public void Dispose()
    {
        try
        {
            Reader?.Dispose();
            P?.Dispose();
        }
        finally
        {
            BpfFs.RemoveTree(_root);
        }
    }
}
