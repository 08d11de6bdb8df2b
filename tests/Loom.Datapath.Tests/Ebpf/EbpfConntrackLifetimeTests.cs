using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux.Bpf;
using Loom.Testing;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// lb4_ct lifetimes with real packets and short lifetimes (routed lab; pods 1 and 2 backends, pod 3 the client): the GC
/// pass deletes a UDP flow's two entries after its lifetime and a closed TCP flow's after the closing lifetime, keeps an
/// open one; the programs treat an expired, uncollected UDP entry as absent; a Maglev flow whose entries were evicted
/// keeps its backend.
/// </summary>
public sealed class EbpfConntrackLifetimeTests : IDisposable
{
    private const int Client = 3;
    private static readonly IPAddress Vip = IPAddress.Parse("10.96.0.120");
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(1);
    private readonly EbpfLab _lab = new(bridge: false, 3, 53, 80);
    private EbpfServiceBackend? _b;

    public void Dispose()
    {
        _b?.Dispose();
        _lab.Dispose();
    }

    [Fact]
    public void A_udp_flows_two_entries_expire_together_and_the_gc_deletes_them()
    {
        var b = Start(LbAlgorithm.Random, Protocol.Udp, new LbConntrackLifetimes { Other = Short });
        using var s = UdpClient();
        Assert.NotNull(Ask(s));
        var port = ((IPEndPoint)s.LocalEndPoint!).Port;
        Assert.Equal(2, Entries(ProtocolType.Udp, port).Count); // forward (to the VIP) and reverse (to the backend)

        Assert.Equal(0, b.CollectConntrack().ConnTrackDeleted);
        Assert.Equal(2, Entries(ProtocolType.Udp, port).Count);

        Thread.Sleep(Short * 2.5);
        var r = b.CollectConntrack();
        Assert.Empty(Entries(ProtocolType.Udp, port));
        Assert.Equal(2, r.ConnTrackDeleted);
    }

    [Fact]
    public void An_expired_udp_entry_the_gc_has_not_reached_is_a_new_flow_for_the_program()
    {
        Start(LbAlgorithm.Random, Protocol.Udp, new LbConntrackLifetimes { Other = Short });
        using var s = UdpClient();
        Assert.NotNull(Ask(s));
        var selects = Stat(LbMaps.Stat.Select);
        Assert.NotNull(Ask(s));
        Assert.Equal(selects, Stat(LbMaps.Stat.Select)); // within the lifetime: the same entry

        Thread.Sleep(Short * 2.5);
        Assert.NotNull(Ask(s));
        Assert.Equal(selects + 1, Stat(LbMaps.Stat.Select));
    }

    [Fact]
    public void A_closed_tcp_flow_goes_after_the_closing_lifetime_and_an_open_one_stays()
    {
        var b = Start(LbAlgorithm.Random, Protocol.Tcp, new LbConntrackLifetimes { TcpClosing = Short, TcpSyn = Short });
        var (open, _) = _lab.OpenTcp(Client, Vip, 80);
        using var kept = open;
        Assert.Equal("x", EbpfLab.Echo(kept, "x"));
        var keptPort = ((IPEndPoint)kept.LocalEndPoint!).Port;
        var (closed, _) = _lab.OpenTcp(Client, Vip, 80);
        var closedPort = ((IPEndPoint)closed.LocalEndPoint!).Port;
        closed.Shutdown(SocketShutdown.Both);
        closed.Dispose();
        Assert.True(Shell.WaitFor(() => Entries(ProtocolType.Tcp, closedPort).Any(e => (e.Value.Flags & LbMaps.CtClosing) != 0), TimeSpan.FromSeconds(2)));

        Thread.Sleep(Short * 2.5);
        var r = b.CollectConntrack();
        Assert.Empty(Entries(ProtocolType.Tcp, closedPort));
        Assert.True(r.ConnTrackDeleted >= 2, $"deleted {r.ConnTrackDeleted}");
        var left = Entries(ProtocolType.Tcp, keptPort);
        Assert.Equal(2, left.Count); // established: 6 h, though quiet for longer than the SYN and closing lifetimes
        Assert.All(left, e => Assert.Equal(LbMaps.CtEstablished, e.Value.Flags));
        Assert.Equal("y", EbpfLab.Echo(kept, "y"));
    }

    [Fact]
    public void A_maglev_flow_whose_entries_were_evicted_keeps_its_backend()
    {
        // Re-choosing mid-stream starts an established lifetime after the programs took over (see the test below);
        // before that a delayed ACK after the eviction would go to the kernel, which resets the connection.
        var b = Start(LbAlgorithm.Maglev, Protocol.Tcp, new LbConntrackLifetimes { TcpEstablished = Short });
        Thread.Sleep(Short * 1.5);
        var (s, greeting) = _lab.OpenTcp(Client, Vip, 80);
        using var conn = s;
        Assert.Equal("x", EbpfLab.Echo(conn, "x"));
        var port = ((IPEndPoint)conn.LocalEndPoint!).Port;
        Evict(b, port);

        var (selects, passed) = (Stat(LbMaps.Stat.Select), Stat(LbMaps.Stat.PassedToKernel));
        Assert.Equal("y", EbpfLab.Echo(conn, "y")); // mid-stream: Maglev chooses the same backend again
        Assert.Equal(selects + 1, Stat(LbMaps.Stat.Select));
        Assert.Equal(passed, Stat(LbMaps.Stat.PassedToKernel));
        Assert.Equal(2, Entries(ProtocolType.Tcp, port).Count);
        Assert.StartsWith("pod", greeting, StringComparison.Ordinal);
    }

    [Fact]
    public void Right_after_the_switch_a_maglev_flow_without_entries_is_left_to_the_kernel()
    {
        // Within an established lifetime of the first config write, such a flow may be one kube-proxy's DNAT opened.
        var b = Start(LbAlgorithm.Maglev, Protocol.Tcp, new LbConntrackLifetimes());
        var (s, _) = _lab.OpenTcp(Client, Vip, 80);
        using var conn = s;
        Assert.Equal("x", EbpfLab.Echo(conn, "x"));
        var port = ((IPEndPoint)conn.LocalEndPoint!).Port;
        Evict(b, port);

        var (selects, passed) = (Stat(LbMaps.Stat.Select), Stat(LbMaps.Stat.PassedToKernel));
        conn.Send("y\n"u8); // no one translates it now: no answer is expected
        Assert.True(Shell.WaitFor(() => Stat(LbMaps.Stat.PassedToKernel) > passed, TimeSpan.FromSeconds(3)));
        Assert.Equal(selects, Stat(LbMaps.Stat.Select));
        Assert.Empty(Entries(ProtocolType.Tcp, port));

        // A restarted agent keeps the moment of the switch: the wait does not start again.
        var since = b.Loaded.Map<uint, LbConfig>(LbMaps.Config).Lookup(0).SinceNs;
        Assert.NotEqual(0UL, since);
        b.Dispose();
        _b = null;
        Start(LbAlgorithm.Maglev, Protocol.Tcp, new LbConntrackLifetimes());
        Assert.Equal(since, _b!.Loaded.Map<uint, LbConfig>(LbMaps.Config).Lookup(0).SinceNs);

        // A switch away (flush) forgets it: switched back later, the wait starts again.
        var flushed = _b;
        _lab.InNode(flushed.Flush);
        Assert.Equal(0UL, flushed.Loaded.Map<uint, LbConfig>(LbMaps.Config).Lookup(0).SinceNs);
        flushed.Dispose();
        _b = null;
        Start(LbAlgorithm.Maglev, Protocol.Tcp, new LbConntrackLifetimes());
        Assert.True(_b!.Loaded.Map<uint, LbConfig>(LbMaps.Config).Lookup(0).SinceNs > since);
    }

    /// <summary>Deletes a TCP flow's lb4_ct entries, as LRU eviction of a full map would.</summary>
    private void Evict(EbpfServiceBackend b, int port)
    {
        var ct = b.Loaded.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack);
        foreach (var (k, _) in Entries(ProtocolType.Tcp, port))
        {
            ct.Delete(k);
        }
    }

    private EbpfServiceBackend Start(LbAlgorithm algorithm, Protocol protocol, LbConntrackLifetimes lifetimes)
    {
        _b = new EbpfServiceBackend(new EbpfServiceOptions
        {
            PinDirectory = _lab.PinDirectory,
            ObjectDirectory = EbpfLab.ObjectDirectory,
            Interfaces = () => _lab.HostIfindexes,
            Algorithm = algorithm,
            ConnTrack = lifetimes,
        });
        var b = _b;
        _lab.InNode(() => b.Sync([_lab.Service("svc", Vip.ToString(), protocol == Protocol.Udp ? 53 : 80, [1, 2], protocol)]));
        return b;
    }

    private Socket UdpClient()
    {
        var s = _lab.Pod(Client).Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        s.ReceiveTimeout = 300;
        s.Connect(new IPEndPoint(Vip, 53)); // one socket, one source port: one flow
        return s;
    }

    /// <summary>An answer to a datagram, asking up to 10 times (the first may wait on ARP on a busy machine).</summary>
    private static string? Ask(Socket s)
    {
        var buf = new byte[64];
        for (var i = 0; i < 10; i++)
        {
            s.Send("q"u8);
            try
            {
                return Encoding.ASCII.GetString(buf, 0, s.Receive(buf)).Trim();
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
            {
            }
        }

        return null;
    }

    /// <summary>The client's lb4_ct entries from <paramref name="port"/> (both directions).</summary>
    private List<KeyValuePair<LbCtKey, LbCtEntry>> Entries(ProtocolType protocol, int port) =>
        [.. _b!.Loaded.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack).Entries()
            .Where(e => e.Key.Protocol == (byte)protocol && e.Key.SourcePort == LbMaps.PortToNetwork(port)
                && e.Key.SourceAddress == LbMaps.ToNetwork(_lab.PodIp(Client)))];

    private ulong Stat(LbMaps.Stat stat) =>
        _b!.Loaded.PerCpuMap<uint, ulong>(LbMaps.Stats).Lookup((uint)stat).Aggregate(0UL, (x, y) => x + y);
}
