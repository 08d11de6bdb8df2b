using System.Net;
using System.Net.Sockets;
using Loom.Datapath.Routing;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux.Bpf;
using Loom.Testing;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// lb4's tc programs with real packets: its connection tracking across the end of a TCP flow (FIN or RST) and a new
/// flow on the same client port, and its place in the tc chain (it hands on what it does not translate, so host
/// routing's hr_from_pod at a later priority still runs). Pod 1 is the only backend, pod 3 the client.
/// </summary>
public sealed class EbpfConnTrackTests : IDisposable
{
    private const int Client = 3;
    private static readonly IPAddress Vip = IPAddress.Parse("10.96.0.110");
    private readonly EbpfLab _lab = new(bridge: false, 3, 80);
    private readonly EbpfServiceBackend _backend;
    private BpfHostRouting? _routing;

    public EbpfConnTrackTests()
    {
        _backend = new EbpfServiceBackend(new EbpfServiceOptions
        {
            PinDirectory = _lab.PinDirectory,
            ObjectDirectory = EbpfLab.ObjectDirectory,
            Interfaces = () => _lab.HostIfindexes,
        });
        _lab.InNode(() => _backend.Sync([_lab.Service("webpod", Vip.ToString(), 80, [1])]));
    }

    public void Dispose()
    {
        if (_routing is { } r)
        {
            _lab.InNode(r.Remove);
        }

        _backend.Dispose();
        _lab.Dispose();
    }

    [Theory]
    [InlineData(true, 44001)]
    [InlineData(false, 44002)]
    public void A_direct_connection_reusing_the_port_of_a_closed_service_flow_connects(bool reset, int port)
    {
        Assert.Equal("pod1", Connect(port, Vip, reset));
        Assert.True(Shell.WaitFor(() => Closing(port), TimeSpan.FromSeconds(2)), "the service flow's entry is not marked closing");

        // Same client port, same pod: the SYN-ACK must come back from the pod, not be rewritten to the ClusterIP.
        Assert.Equal("pod1", Connect(port, _lab.PodIp(1), reset: true));
    }

    [Fact]
    public void A_service_connection_after_a_direct_one_on_the_same_port_is_translated_again()
    {
        const int port = 44003;
        Assert.Equal("pod1", Connect(port, Vip, reset: true));
        Assert.Equal("pod1", Connect(port, _lab.PodIp(1), reset: true));
        var selects = Stat(LbMaps.Stat.Select);

        // The direct SYN dropped the old reverse entry; the new service flow starts a new entry with both directions.
        Assert.Equal("pod1", Connect(port, Vip, reset: true));
        Assert.Equal(selects + 1, Stat(LbMaps.Stat.Select));
    }

    [Fact]
    public void Traffic_lb4_leaves_alone_reaches_the_next_tc_filter_and_service_traffic_still_works()
    {
        // Egress delivery: replies reach the client through its veth's egress, where lb4_to_pod reverse-translates.
        _routing = new BpfHostRouting(new HostRoutingOptions
        {
            PinDirectory = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("hr")),
            ObjectDirectory = EbpfLab.ObjectDirectory,
            PodDelivery = PodDelivery.Egress,
        });
        Assert.True(_backend.Options.TcPriority < _routing.Options.TcPriority);
        _lab.InNode(() =>
        {
            foreach (var ifindex in _lab.HostIfindexes)
            {
                _routing.AttachPod(ifindex);
            }
        });

        Assert.Equal("pod1", _lab.Tcp(Client, _lab.PodIp(1), 80));
        var direct = Redirected();
        Assert.True(direct > 0, "hr_from_pod saw no direct traffic: " + _lab.InNode(_routing.Counters));

        var dnat = Stat(LbMaps.Stat.Dnat);
        var revnat = Stat(LbMaps.Stat.ReverseNat);
        Assert.Equal("pod1", _lab.Tcp(Client, Vip, 80));
        Assert.True(Stat(LbMaps.Stat.Dnat) > dnat);
        Assert.True(Stat(LbMaps.Stat.ReverseNat) > revnat);
        // The backend's replies are not for a service at its veth's ingress: lb4 hands them on to host routing too.
        Assert.True(Redirected() > direct, "hr_from_pod saw no service replies");
    }

    [Fact]
    public async Task A_flow_opened_through_kube_proxys_DNAT_keeps_going_after_lb4_takes_its_service_over()
    {
        const int port = 9001;
        var vip = IPAddress.Parse("10.96.0.111");
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var listener = _lab.Pod(1).Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(_lab.PodIp(1), port));
        listener.Listen();
        var echo = Task.Run(async () =>
        {
            using var c = await listener.AcceptAsync(stop.Token);
            var buf = new byte[64];
            int n;
            while ((n = await c.ReceiveAsync(buf, stop.Token)) > 0)
            {
                await c.SendAsync(buf.AsMemory(0, n), stop.Token);
            }
        });

        // kube-proxy's part before the switch: the node's conntrack DNATs the flow.
        var dnat = Shell.Run("ip", ["netns", "exec", _lab.Node.Name, "iptables", "-t", "nat", "-A", "PREROUTING", "-d", $"{vip}/32", "-p", "tcp",
            "--dport", $"{port}", "-j", "DNAT", "--to-destination", $"{_lab.PodIp(1)}:{port}"]);
        Assert.True(dnat.ExitCode == 0, dnat.Stderr);
        using var client = _lab.Pod(Client).Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        client.Connect(new IPEndPoint(vip, port));
        client.ReceiveTimeout = 3000;
        Assert.Equal("before\n", Exchange(client, "before\n"));

        // lb4 takes the service over: the flow's next packets carry no SYN and have no entry in lb4's CT.
        _lab.InNode(() => _backend.Sync([_lab.Service("webpod", Vip.ToString(), 80, [1]), _lab.Service("kept", vip.ToString(), port, [1])]));
        var (passed, selects) = (Stat(LbMaps.Stat.PassedToKernel), Stat(LbMaps.Stat.Select));
        Assert.Equal("after\n", Exchange(client, "after\n"));
        Assert.True(Stat(LbMaps.Stat.PassedToKernel) > passed, "lb4 did not leave the flow to the kernel");
        Assert.Equal(selects, Stat(LbMaps.Stat.Select)); // no backend chosen for a flow lb4 did not open
        client.Shutdown(SocketShutdown.Both);
        await echo.WaitAsync(TimeSpan.FromSeconds(5));
    }

    private static string Exchange(Socket s, string line)
    {
        s.Send(System.Text.Encoding.ASCII.GetBytes(line));
        var buf = new byte[64];
        var n = s.Receive(buf);
        return System.Text.Encoding.ASCII.GetString(buf, 0, n);
    }

    private ulong Redirected() => _lab.InNode(_routing!.Counters)[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectEgress];

    /// <summary>A connection from the client bound to <paramref name="port"/>, closed with an RST (linger 0) or FINs both ways.</summary>
    private string Connect(int port, IPAddress target, bool reset)
    {
        using var s = _lab.Pod(Client).Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        s.Bind(new IPEndPoint(_lab.PodIp(Client), port));
        using var cts = new CancellationTokenSource(3000);
        s.ConnectAsync(new IPEndPoint(target, 80), cts.Token).AsTask().GetAwaiter().GetResult();
        s.ReceiveTimeout = 3000;
        var buf = new byte[16];
        var answer = System.Text.Encoding.ASCII.GetString(buf, 0, s.Receive(buf)).Trim();
        if (reset)
        {
            s.LingerState = new LingerOption(true, 0);
        }
        else
        {
            // Our FIN, then the server's (it closes at end of stream): a complete close.
            s.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, s.Receive(buf));
        }

        s.Close();
        return answer;
    }

    private bool Closing(int port)
    {
        var key = new LbCtKey
        {
            SourceAddress = LbMaps.ToNetwork(_lab.PodIp(Client)),
            DestinationAddress = LbMaps.ToNetwork(Vip),
            SourcePort = LbMaps.PortToNetwork(port),
            DestinationPort = LbMaps.PortToNetwork(80),
            Protocol = (byte)ProtocolType.Tcp,
            Direction = 0,
        };
        return _backend.Loaded.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack).TryLookup(key, out var e) && (e.Flags & LbMaps.CtClosing) != 0;
    }

    private ulong Stat(LbMaps.Stat stat) =>
        _backend.Loaded.PerCpuMap<uint, ulong>(LbMaps.Stats).Lookup((uint)stat).Aggregate(0UL, (x, y) => x + y);
}
