using System.Net;
using System.Net.Sockets;
using Loom.Datapath.Masquerade;
using Loom.Datapath.Routing;
using Loom.Datapath.Tests.Ebpf;
using Loom.Linux.Bpf;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Routing;

/// <summary>
/// eBPF masquerade on node 1's underlay (<see cref="RoutedNodesLab"/>), real packets: the external server, which has no
/// route to the pods (so only a de-NATed reply can reach one), sees node 1's IP for TCP, UDP and ping, with legacy and with
/// eBPF host routing; traffic inside the nativeRoutingCIDR keeps the pod's IP.
/// </summary>
public sealed class MasqueradeKernelTests : IDisposable
{
    private static readonly IPNetwork NativeRoutingCidr = IPNetwork.Parse("10.245.0.0/16");
    private readonly RoutedNodesLab _lab = new();
    private readonly List<Action> _cleanup = [];

    public void Dispose()
    {
        foreach (var c in _cleanup)
        {
            c();
        }

        _lab.Dispose();
    }

    [Fact]
    public void Pods_reach_an_external_server_as_the_node_ip_and_get_the_replies()
    {
        var pod = _lab.Pod(1, 1);
        // Without masquerade the server sees the pod's address and cannot answer it.
        Assert.False(Ping(pod, External));

        var masq = Masquerade();

        Assert.Equal(NodeIp(1).ToString(), Tcp(pod, External));
        Assert.Equal(NodeIp(1).ToString(), Udp(pod, External));
        Assert.True(Ping(pod, External));
        Assert.Equal(NodeIp(1).ToString(), Tcp(_lab.Pod(1, 2), External));
        var entries = InNode1(masq.Entries);
        Assert.Contains(entries, e => e.Protocol == ProtocolType.Tcp && e.Pod.Address.Equals(PodIp(1, 1)) && e.Destination.Port == Port);
        Assert.Contains(entries, e => e.Protocol == ProtocolType.Tcp && e.Pod.Address.Equals(PodIp(1, 2)));
        Assert.Contains(entries, e => e.Protocol == ProtocolType.Udp && e.Destination.Address.Equals(External));
        Assert.Contains(entries, e => e.Protocol == ProtocolType.Icmp && e.Destination.Address.Equals(External));
        Assert.All(entries, e => Assert.InRange(e.NatPort, masq.Options.PortMin, masq.Options.PortMax));
        Assert.True(InNode1(() => masq.Counter(MasqueradeMaps.Stat.Denat)) > 0);
    }

    [Fact]
    public void Two_pods_on_the_same_source_port_to_the_same_server_get_different_node_ports()
    {
        var masq = Masquerade();
        // 62000 is inside the NAT range: the first flow keeps it, the second (same node IP, same server) cannot.
        using var a = ConnectFrom(_lab.Pod(1, 1), 62000);
        using var b = ConnectFrom(_lab.Pod(1, 2), 62000);

        Assert.Equal(NodeIp(1).ToString(), ReadAll(a));
        Assert.Equal(NodeIp(1).ToString(), ReadAll(b));
        var ports = InNode1(masq.Entries).Where(e => e.Protocol == ProtocolType.Tcp && e.Pod.Port == 62000).ToArray();
        Assert.Equal(2, ports.Length);
        Assert.Contains(ports, e => e.Pod.Address.Equals(PodIp(1, 1)) && e.NatPort == 62000);
        Assert.NotEqual(ports[0].NatPort, ports[1].NatPort);
    }

    [Fact]
    public void Traffic_inside_the_native_routing_cidr_keeps_the_pod_ip()
    {
        var masq = Masquerade();

        Assert.Equal(PodIp(1, 1).ToString(), Tcp(_lab.Pod(1, 1), PodIp(2, 1)));
        Assert.Equal(PodIp(1, 2).ToString(), Udp(_lab.Pod(1, 2), PodIp(2, 2)));

        Assert.True(InNode1(() => masq.Counter(MasqueradeMaps.Stat.NonMasquerade)) > 0);
        Assert.Equal(0UL, InNode1(() => masq.Counter(MasqueradeMaps.Stat.Snat)));
        Assert.Empty(InNode1(masq.Entries));
    }

    [Fact]
    public void A_connection_open_before_the_attach_is_left_alone()
    {
        // Node 2's host connects to a server in pod (1,1) before node 1 masquerades (the migration's switch from
        // iptables masquerade); after the attach the pod speaks first, so masq_denat never saw the flow come in.
        using var listener = _lab.Pod(1, 1).Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(IPAddress.Any, 7100));
        listener.Listen();
        using var client = _lab.Node(2).Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        client.ReceiveTimeout = 3000;
        client.Connect(new IPEndPoint(PodIp(1, 1), 7100));
        using var accepted = listener.Accept();

        var masq = Masquerade();
        accepted.Send("after"u8);

        var buf = new byte[16];
        var n = client.Receive(buf);
        Assert.Equal("after", System.Text.Encoding.ASCII.GetString(buf, 0, n));
        Assert.True(InNode1(() => masq.Counter(MasqueradeMaps.Stat.MidFlow)) > 0);
        Assert.DoesNotContain(InNode1(masq.Entries), e => e.Protocol == ProtocolType.Tcp && e.Pod.Port == 7100);
    }

    [Fact]
    public void Masquerade_works_under_ebpf_host_routing()
    {
        var routing = new BpfHostRouting(new HostRoutingOptions
        {
            PinDirectory = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("hr")),
            ObjectDirectory = EbpfLab.ObjectDirectory,
        });
        _cleanup.Add(() => _lab.Node(1).Run(routing.Remove));
        _lab.Node(1).Run(() =>
        {
            routing.AttachPod(_lab.Lxc(1, 1));
            routing.AttachPod(_lab.Lxc(1, 2));
            routing.AttachUnderlay(_lab.Underlay(1));
        });
        var masq = Masquerade();
        var pod = _lab.Pod(1, 1);

        Assert.Equal(NodeIp(1).ToString(), Tcp(pod, External));
        Assert.Equal(NodeIp(1).ToString(), Udp(pod, External));
        Assert.True(Ping(pod, External));

        // Out with bpf_redirect_neigh (then SNAT on the underlay's egress), replies de-NATed and redirected into the pod.
        var c = InNode1(routing.Counters);
        Assert.True(c[HostRoutingProgram.FromPod, HostRoutingVerdict.RedirectNeigh] > 0, c.ToString());
        Assert.True(c[HostRoutingProgram.FromUnderlay, HostRoutingVerdict.RedirectPeer] > 0, c.ToString());
        Assert.True(InNode1(() => masq.Counter(MasqueradeMaps.Stat.Snat)) > 0);
    }

    [Fact]
    public void Remove_leaves_no_filter_and_no_pin()
    {
        var masq = Masquerade();
        Assert.Equal(NodeIp(1).ToString(), Tcp(_lab.Pod(1, 1), External));
        var (ingress, egress) = InNode1(() => masq.AttachedPrograms(_lab.Underlay(1)));
        Assert.NotNull(ingress);
        Assert.NotNull(egress);

        var programs = new[] { MasqueradeMaps.SnatProgram, MasqueradeMaps.DenatProgram }.Select(p => masq.Loaded.Program(p).Id).ToArray();
        var maps = new[] { MasqueradeMaps.Snat, MasqueradeMaps.Reverse, MasqueradeMaps.NonMasquerade, MasqueradeMaps.Config, MasqueradeMaps.Stats }
            .Select(m => masq.Loaded.Map(m).Id).ToArray();

        _lab.Node(1).Run(masq.Remove);

        Assert.True(FreedByKernel(programs, maps), "programs and maps freed");
        Assert.Equal((null, null), InNode1(() => masq.AttachedPrograms(_lab.Underlay(1))));
        Assert.False(Directory.Exists(masq.Options.PinDirectory));
        Assert.False(Ping(_lab.Pod(1, 1), External));
    }

    [Theory]
    [InlineData("10.245.0.1", "10.245.0.0/16", 61000, 65535, "inside PodCidr")]
    [InlineData("192.168.50.11", "10.245.0.0/16", 65000, 62000, "above PortMax")]
    [InlineData("192.168.50.11", "10.245.0.0/16", 80, 65535, "PortMin 80")]
    [InlineData("fd00::1", "10.245.0.0/16", 61000, 65535, "not IPv4")]
    public void Bad_options_are_refused_naming_the_setting(string nodeIp, string podCidr, int min, int max, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => new BpfMasquerade(new MasqueradeOptions
        {
            NodeIp = IPAddress.Parse(nodeIp),
            PodCidr = IPNetwork.Parse(podCidr),
            PortMin = min,
            PortMax = max,
            PinDirectory = "/sys/fs/bpf/never-created",
        }));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists("/sys/fs/bpf/never-created"));
    }

    private BpfMasquerade Masquerade()
    {
        var masq = new BpfMasquerade(new MasqueradeOptions
        {
            NodeIp = NodeIp(1),
            PodCidr = IPNetwork.Parse(PodPool),
            NonMasqueradeCidrs = [NativeRoutingCidr],
            PinDirectory = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("masq")),
            ObjectDirectory = EbpfLab.ObjectDirectory,
        });
        _cleanup.Add(() => _lab.Node(1).Run(masq.Remove));
        _lab.Node(1).Run(() => masq.Attach(_lab.Underlay(1)));
        return masq;
    }

    private T InNode1<T>(Func<T> f) => _lab.Node(1).Run(f);

    private static Socket ConnectFrom(Loom.Testing.TestNetns pod, int localPort)
    {
        var s = pod.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            s.Bind(new IPEndPoint(IPAddress.Any, localPort));
            s.ReceiveTimeout = 3000;
            s.SendTimeout = 3000;
            var connect = s.ConnectAsync(new IPEndPoint(External, Port));
            Assert.True(connect.Wait(3000), $"connect from port {localPort} timed out");
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    private static string ReadAll(Socket s)
    {
        var buf = new byte[64];
        var text = new System.Text.StringBuilder();
        int n;
        while ((n = s.Receive(buf)) > 0)
        {
            text.Append(System.Text.Encoding.ASCII.GetString(buf, 0, n));
        }

        return text.ToString().Trim();
    }
}
