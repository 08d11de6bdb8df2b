using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// On the tc path (routed lab; pods 1 and 2 backends, pod 3 the client): an established UDP stream moves to a live
/// backend within a second of its backend's removal by an Update (its lb4_ct entries are swept).
/// </summary>
public sealed class EbpfUdpMoveTests : IDisposable
{
    private const int Client = 3;
    private static readonly IPAddress Vip = IPAddress.Parse("10.96.0.10");
    private readonly EbpfLab _lab = new(bridge: false, 3, 53, 80);
    private readonly EbpfServiceBackend _b;

    public EbpfUdpMoveTests() => _b = new EbpfServiceBackend(new EbpfServiceOptions
    {
        PinDirectory = _lab.PinDirectory,
        ObjectDirectory = EbpfLab.ObjectDirectory,
        Interfaces = () => _lab.HostIfindexes,
    });

    public void Dispose()
    {
        _b.Dispose();
        _lab.Dispose();
    }

    [Fact]
    public void A_steady_udp_stream_moves_to_the_other_backend_within_a_second_of_an_update_removing_its_own()
    {
        _lab.InNode(() => _b.Sync([_lab.Service("dns", "10.96.0.10", 53, [1, 2], Protocol.Udp)]));
        using var s = _lab.Pod(Client).Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        s.ReceiveTimeout = 200;
        s.Connect(new IPEndPoint(Vip, 53)); // one socket, one source port: one flow, one lb4_ct entry
        string? first = null;
        for (var i = 0; i < 10 && first is null; i++)
        {
            first = Ask(s); // the first datagram may wait on ARP (or the server) on a busy machine
        }

        Assert.True(first is "pod1" or "pod2", first);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(first, Ask(s)); // the flow keeps its backend
        }

        var other = first == "pod1" ? 2 : 1;
        _lab.InNode(() => _b.Update([_lab.Service("dns", "10.96.0.10", 53, [other], Protocol.Udp)], []));
        var sw = Stopwatch.StartNew();
        string? answer = null;
        while (sw.Elapsed < TimeSpan.FromSeconds(3) && answer != $"pod{other}")
        {
            answer = Ask(s);
            Thread.Sleep(50); // a sender every 50 ms
        }

        Assert.Equal($"pod{other}", answer);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"moved after {sw.Elapsed}");
        Assert.Equal(new IPEndPoint(Vip, 53), s.RemoteEndPoint);
    }

    private static string? Ask(Socket s)
    {
        s.Send("q"u8);
        var buf = new byte[64];
        try
        {
            return Encoding.ASCII.GetString(buf, 0, s.Receive(buf)).Trim();
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            return null;
        }
    }
}
