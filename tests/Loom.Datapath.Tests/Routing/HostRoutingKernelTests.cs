using System.Net;
using Loom.Datapath.Routing;
using Loom.Datapath.Tests.Ebpf;
using Loom.Linux;
using Loom.Linux.Bpf;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Routing;

/// <summary>
/// eBPF host routing on two routed nodes (<see cref="RoutedNodesLab"/>), real packets: with the programs on every pod
/// veth and both underlays, pod-to-pod traffic on one node and across nodes bypasses the nodes' FORWARD chains (their
/// counting rules stay at 0, though the same traffic counts there without the programs), and the programs' counters
/// show the redirects.
/// </summary>
public sealed class HostRoutingKernelTests : IDisposable
{
    private readonly RoutedNodesLab _lab = new();
    private readonly BpfHostRouting?[] _routing = new BpfHostRouting?[2];

    public void Dispose()
    {
        for (var n = 1; n <= 2; n++)
        {
            if (_routing[n - 1] is { } r)
            {
                _lab.Node(n).Run(r.Remove);
            }
        }

        _lab.Dispose();
    }

    [Fact]
    public void Pod_traffic_skips_the_node_stack_on_one_node_and_across_nodes()
    {
        // Without the programs the host stack forwards it: the counting rules see it.
        AssertPodToPod();
        Assert.True(_lab.ForwardedPodPackets(1) > 0, "the FORWARD counting rule counts legacy-routed pod traffic");
        Assert.True(_lab.ForwardedPodPackets(2) > 0);

        Attach(1);
        Attach(2);
        _lab.ZeroForwardCounters(1);
        _lab.ZeroForwardCounters(2);
        AssertPodToPod();

        Assert.Equal(0, _lab.ForwardedPodPackets(1));
        Assert.Equal(0, _lab.ForwardedPodPackets(2));
        var c1 = Counters(1);
        var c2 = Counters(2);
        // Node 1: pod 1 -> pod 2 and the replies (peer), pod 1 -> node 2 (neigh), node 2's replies coming in (peer).
        Assert.True(c1[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectPeer] > 0, c1.ToString());
        Assert.True(c1[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectNeigh] > 0, c1.ToString());
        Assert.True(c1[HostRoutingProgram.FromUnderlay, HostRoutingVerdict.RedirectPeer] > 0, c1.ToString());
        Assert.True(c2[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectNeigh] > 0, c2.ToString());
        Assert.True(c2[HostRoutingProgram.FromUnderlay, HostRoutingVerdict.RedirectPeer] > 0, c2.ToString());
    }

    [Fact]
    public void Cross_node_traffic_goes_out_of_a_vxlan_tunnel_device_and_comes_in_from_it()
    {
        var vxlan = _lab.UseVxlanOverlay();
        Assert.Equal(PodIp(1, 1).ToString(), Tcp(_lab.Pod(1, 1), PodIp(2, 1)));
        Attach(1);
        Attach(2);
        for (var n = 1; n <= 2; n++)
        {
            var r = _routing[n - 1]!;
            var ifindex = vxlan[n - 1];
            _lab.Node(n).Run(() => r.AttachUnderlay(ifindex));
        }

        _lab.ZeroForwardCounters(1);
        _lab.ZeroForwardCounters(2);
        var sent = _lab.TxPackets(1, "loom_vxlan");

        Assert.Equal(PodIp(1, 1).ToString(), Tcp(_lab.Pod(1, 1), PodIp(2, 1)));
        Assert.Equal(PodIp(2, 2).ToString(), Udp(_lab.Pod(2, 2), PodIp(1, 2)));

        Assert.True(_lab.TxPackets(1, "loom_vxlan") > sent, "node 1 sent through the tunnel");
        Assert.Equal(0, _lab.ForwardedPodPackets(1));
        Assert.Equal(0, _lab.ForwardedPodPackets(2));
        foreach (var n in new[] { 1, 2 })
        {
            var c = Counters(n);
            Assert.True(c[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectNeigh] > 0, c.ToString());
            Assert.True(c[HostRoutingProgram.FromUnderlay, HostRoutingVerdict.RedirectPeer] > 0, c.ToString());
        }
    }

    [Fact]
    public void What_the_fib_does_not_forward_is_left_to_the_host_stack()
    {
        Attach(1);
        var pod = _lab.Pod(1, 1);

        _lab.Node(1).Netlink.RouteAdd(new Route(IPNetwork.Parse("198.51.100.0/24")) { Type = RouteType.Unreachable });

        // The router IP is the node's own: the FIB does not forward, the stack answers the ping.
        Assert.True(Ping(pod, RouterIp(1)));
        // An unreachable route: the stack answers with ICMP unreachable.
        Assert.Null(Udp(pod, IPAddress.Parse("198.51.100.7"), 500));

        var c = Counters(1);
        Assert.True(c[HostRoutingProgram.FromPod, HostRoutingVerdict.PassNotForwarded] > 0, c.ToString());
        Assert.True(c[HostRoutingProgram.FromPod, HostRoutingVerdict.PassNoRoute] > 0, c.ToString());
        Assert.Equal(0UL, c[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectNeigh]);
    }

    [Fact]
    public void Remove_leaves_no_filter_and_no_pin_and_the_host_stack_routes_again()
    {
        Attach(1);
        Attach(2);
        AssertPodToPod();
        var before = Counters(1);
        _routing[0]!.Dispose();

        // A restarted agent: a new instance over the same pins finds the devices and the counters, and removes it all.
        using var r1 = new BpfHostRouting(_routing[0]!.Options);
        var pins = r1.Options.PinDirectory;
        Assert.True(Directory.Exists(pins));
        var attached = _lab.Node(1).Run(r1.AttachedInterfaces);
        Assert.Equal(HostRoutingRole.Pod, attached[_lab.Lxc(1, 1)]);
        Assert.Equal(HostRoutingRole.Pod, attached[_lab.Lxc(1, 2)]);
        Assert.Equal(HostRoutingRole.Underlay, attached[_lab.Underlay(1)]);
        var after = _lab.Node(1).Run(r1.Counters);
        Assert.Equal(before[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectNeigh], after[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectNeigh]);
        Assert.Equal(before[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectPeer], after[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectPeer]);

        var programs = new[] { HostRoutingMaps.FromPod, HostRoutingMaps.FromUnderlay }.Select(p => r1.Loaded.Program(p).Id).ToArray();
        var maps = new[] { HostRoutingMaps.Interfaces, HostRoutingMaps.Stats, HostRoutingMaps.Config }.Select(m => r1.Loaded.Map(m).Id).ToArray();

        _lab.Node(1).Run(r1.Remove);

        Assert.True(FreedByKernel(programs, maps), "programs and maps freed");
        Assert.False(Directory.Exists(pins));
        foreach (var ifindex in new[] { _lab.Lxc(1, 1), _lab.Lxc(1, 2), _lab.Underlay(1) })
        {
            Assert.Null(_lab.Node(1).Run(() => BpfTc.Query(ifindex, TcDirection.Ingress, r1.Options.TcPriority, r1.Options.TcHandle)));
        }

        _lab.ZeroForwardCounters(1);
        AssertPodToPod();
        Assert.True(_lab.ForwardedPodPackets(1) > 0);
    }

    [Theory]
    [InlineData(PodDelivery.Peer)]
    [InlineData(PodDelivery.Egress)]
    public void Egress_delivery_runs_the_pod_veths_egress_programs_and_peer_delivery_skips_them(PodDelivery delivery)
    {
        Attach(1, delivery);
        Attach(2, delivery);
        // A packet counter on the egress of two pods' host veths (where the service backend's reverse NAT would be).
        using var counter = BpfObject.Load(EbpfLab.ObjectPath("test_maps.o"));
        var prog = counter.Program("count_packets");
        var watched = new[] { (Node: 1, Ifindex: _lab.Lxc(1, 2)), (Node: 2, Ifindex: _lab.Lxc(2, 1)) };
        foreach (var (n, ifindex) in watched)
        {
            _lab.Node(n).Run(() => prog.AttachTc(ifindex, TcDirection.Egress));
        }

        AssertPodToPod();

        var counts = counter.PerCpuMap<uint, PacketCount>("pkt_counts");
        var seen = watched.Select(w => counts.Lookup((uint)w.Ifindex).Aggregate(0UL, (sum, c) => sum + c.Packets)).ToArray();
        var c1 = Counters(1);
        if (delivery == PodDelivery.Peer)
        {
            Assert.Equal([0UL, 0UL], seen);
            Assert.Equal(0UL, c1[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectEgress]);
        }
        else
        {
            Assert.All(seen, n => Assert.True(n > 0));
            Assert.Equal(0UL, c1[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectPeer]);
            Assert.Equal(0UL, c1[HostRoutingProgram.FromUnderlay, HostRoutingVerdict.RedirectPeer]);
            Assert.True(c1[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectEgress] > 0, c1.ToString());
            Assert.True(c1[HostRoutingProgram.FromUnderlay, HostRoutingVerdict.RedirectEgress] > 0, c1.ToString());
        }

        Assert.Equal(0, _lab.ForwardedPodPackets(1));
        Assert.Equal(0, _lab.ForwardedPodPackets(2));
    }

    [Fact]
    public async Task A_flow_the_kernel_masquerades_keeps_going_through_the_stack_after_the_programs_attach()
    {
        const int port = 7100;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var listener = _lab.ExternalServer.Run(() => new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
            System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(External, port));
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

            return ((IPEndPoint)c.RemoteEndPoint!).Address;
        });

        // Opened under legacy routing with iptables MASQUERADE: only the node's conntrack holds its translation.
        var masq = Loom.Testing.Shell.Run("ip", ["netns", "exec", _lab.Node(1).Name, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", PodPool,
            "-d", $"{External}/32", "-j", "MASQUERADE"]);
        Assert.True(masq.ExitCode == 0, masq.Stderr);
        using var client = PodNetwork.Connect(_lab.Pod(1, 1), External, port, 3000);
        client.ReceiveTimeout = 3000;
        Assert.Equal("before\n", Exchange(client, "before\n"));

        Attach(1);
        // The pod's packets pass to the stack for their SNAT; the replies are for the node IP, the stack's anyway.
        Assert.Equal("after\n", Exchange(client, "after\n"));
        var c1 = Counters(1);
        Assert.True(c1[HostRoutingProgram.FromPod, HostRoutingVerdict.PassKernelNat] > 0, c1.ToString());
        client.Shutdown(System.Net.Sockets.SocketShutdown.Both);
        Assert.Equal(NodeIp(1), await echo.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    private static string Exchange(System.Net.Sockets.Socket s, string line)
    {
        s.Send(System.Text.Encoding.ASCII.GetBytes(line));
        var buf = new byte[64];
        var n = s.Receive(buf);
        return System.Text.Encoding.ASCII.GetString(buf, 0, n);
    }

    private void AssertPodToPod()
    {
        Assert.Equal(PodIp(1, 1).ToString(), Tcp(_lab.Pod(1, 1), PodIp(1, 2)));
        Assert.Equal(PodIp(1, 1).ToString(), Tcp(_lab.Pod(1, 1), PodIp(2, 1)));
        Assert.Equal(PodIp(2, 2).ToString(), Tcp(_lab.Pod(2, 2), PodIp(1, 2)));
        Assert.Equal(PodIp(2, 2).ToString(), Udp(_lab.Pod(2, 2), PodIp(1, 1)));
    }

    private HostRoutingCounters Counters(int n) => _lab.Node(n).Run(_routing[n - 1]!.Counters);

    private void Attach(int n, PodDelivery delivery = PodDelivery.Peer)
    {
        var r = _routing[n - 1] ??= new BpfHostRouting(new HostRoutingOptions
        {
            PinDirectory = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("hr")),
            ObjectDirectory = EbpfLab.ObjectDirectory,
            PodDelivery = delivery,
        });
        _lab.Node(n).Run(() =>
        {
            r.AttachPod(_lab.Lxc(n, 1));
            r.AttachPod(_lab.Lxc(n, 2));
            r.AttachUnderlay(_lab.Underlay(n));
        });
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private readonly record struct PacketCount(ulong Packets, ulong Bytes);
}
