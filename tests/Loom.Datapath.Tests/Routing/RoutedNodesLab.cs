using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Datapath.Tests.Routing;

/// <summary>
/// Two nodes with routed pods and native routing, as Cilium lays them out: a "wire" namespace bridges the underlay
/// (192.168.50.0/24): node n at 192.168.50.1n on eth1, and an "external" server at 192.168.50.100 that has no route to
/// the pods. Node n holds the block 10.245.n.0/24: its router IP 10.245.n.1 on loom_host, pod i (1, 2) at
/// 10.245.n.(10+i)/32 behind the host veth lxc{i} (a /32 host route, no address on the veth), and a route to the peer's
/// block via the peer's node IP. Every pod and the external server answer TCP and UDP on <see cref="Port"/> with the
/// address they saw the client as. A counting rule in each node's FORWARD chain counts pod-to-pod packets the host
/// stack forwards. Nothing is created outside these namespaces; all of it goes on Dispose.
/// </summary>
internal sealed class RoutedNodesLab : IDisposable
{
    public const int Port = 7000;
    public const string PodPool = "10.245.0.0/16";
    public static readonly IPAddress External = IPAddress.Parse("192.168.50.100");

    private readonly List<TestNetns> _namespaces = [];
    private readonly List<Socket> _servers = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly TestNetns[] _nodes = new TestNetns[2];
    private readonly TestNetns[,] _pods = new TestNetns[2, 2];
    private readonly int[,] _lxc = new int[2, 2];
    private readonly int[] _underlay = new int[2];

    public RoutedNodesLab()
    {
        try
        {
            Wire = Add("wire");
            var wnl = Wire.Netlink;
            var br = wnl.LinkAdd(new BridgeSpec("br0")).Index;
            wnl.LinkSetUp(br);
            for (var n = 1; n <= 2; n++)
            {
                BuildNode(n, br);
            }

            ExternalServer = Add("ext");
            var ext = Plug(ExternalServer, br, "u-ext", "eth0");
            ExternalServer.Netlink.AddrAdd(ext, External, 24);
            Serve(ExternalServer);
            for (var n = 1; n <= 2; n++)
            {
                var peer = 3 - n;
                Node(n).Netlink.RouteAdd(new Route(IPNetwork.Parse(Block(peer))) { Gateway = NodeIp(peer), OutputIndex = _underlay[n - 1] });
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public TestNetns Wire { get; }

    public TestNetns ExternalServer { get; }

    public TestNetns Node(int n) => _nodes[n - 1];

    public TestNetns Pod(int n, int i) => _pods[n - 1, i - 1];

    /// <summary>The host-side veth of pod i on node n (an ifindex in node n's namespace).</summary>
    public int Lxc(int n, int i) => _lxc[n - 1, i - 1];

    /// <summary>Node n's underlay device eth1 (an ifindex in its namespace).</summary>
    public int Underlay(int n) => _underlay[n - 1];

    public static IPAddress NodeIp(int n) => IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"192.168.50.1{n}"));

    public static IPAddress PodIp(int n, int i) => IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"10.245.{n}.{10 + i}"));

    public static IPAddress RouterIp(int n) => IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"10.245.{n}.1"));

    public static string Block(int n) => string.Create(CultureInfo.InvariantCulture, $"10.245.{n}.0/24");

    /// <summary>A TCP connection from pod (n, i) to ip: the address the server saw the client as.</summary>
    public static string Tcp(TestNetns from, IPAddress ip, int timeoutMs = 3000)
    {
        using var s = PodNetwork.Connect(from, ip, Port, timeoutMs);
        s.ReceiveTimeout = timeoutMs;
        var buf = new byte[64];
        var sb = new StringBuilder();
        int r;
        while ((r = s.Receive(buf)) > 0)
        {
            sb.Append(Encoding.ASCII.GetString(buf, 0, r));
        }

        return sb.ToString().Trim();
    }

    /// <summary>A UDP datagram to ip: the address the server saw the client as, or null after the timeout.</summary>
    public static string? Udp(TestNetns from, IPAddress ip, int timeoutMs = 2000) => PodNetwork.Udp(from, ip, Port, timeoutMs)?.Trim();

    /// <summary>One ping (ICMP echo) from a namespace; whether the reply came.</summary>
    public static bool Ping(TestNetns from, IPAddress ip) =>
        Shell.InNetns(from.Name, [Shell.Require("ping"), "-n", "-c1", "-W2", ip.ToString()]).Ok;

    /// <summary>Packets the counting rule in node n's FORWARD chain has seen (pod pool to pod pool).</summary>
    public long ForwardedPodPackets(int n)
    {
        var r = Iptables(n, "-nvx", "-L", "FORWARD");
        var rule = r.Stdout.Split('\n').FirstOrDefault(l => l.Contains(PodPool, StringComparison.Ordinal))
            ?? throw new InvalidOperationException("no counting rule in FORWARD:\n" + r.Stdout);
        return long.Parse(rule.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Switches pod-to-pod traffic between the nodes to a VXLAN overlay as Flannel programs one (Cilium's migration overlay
    /// takes port 8473): on each node loom_vxlan (VNI 2, no learning) holding 10.245.n.0/32, the peer's block via
    /// 10.245.peer.0 onlink on it, a permanent neighbour and an FDB entry to the peer's node IP. Returns the devices' ifindexes.
    /// </summary>
    public int[] UseVxlanOverlay()
    {
        var vxlan = new int[2];
        for (var n = 1; n <= 2; n++)
        {
            var nl = Node(n).Netlink;
            vxlan[n - 1] = nl.LinkAdd(new VxlanSpec("loom_vxlan", 2) { Port = 8473, Local = NodeIp(n), UnderlayIndex = Underlay(n), Learning = false }).Index;
            nl.AddrAdd(vxlan[n - 1], VtepIp(n), 32);
            nl.LinkSetUp(vxlan[n - 1]);
        }

        for (var n = 1; n <= 2; n++)
        {
            var peer = 3 - n;
            var nl = Node(n).Netlink;
            var peerMac = Node(peer).Netlink.LinkByIndex(vxlan[peer - 1])!.HardwareAddr!;
            nl.NeighAdd(new Neigh(vxlan[n - 1], VtepIp(peer), peerMac));
            nl.FdbAppend(vxlan[n - 1], peerMac, NodeIp(peer));
            nl.RouteReplace(new Route(IPNetwork.Parse(Block(peer))) { Gateway = VtepIp(peer), OutputIndex = vxlan[n - 1], OnLink = true });
        }

        return vxlan;
    }

    /// <summary>Packets node n has sent out of a device (its kernel statistics).</summary>
    public long TxPackets(int n, string device)
    {
        var r = Shell.InNetns(Node(n).Name, [Shell.Require("ip"), "-s", "-j", "link", "show", device]);
        using var doc = System.Text.Json.JsonDocument.Parse(r.Ok ? r.Stdout : throw new InvalidOperationException(r.ToString()));
        return doc.RootElement[0].GetProperty("stats64").GetProperty("tx").GetProperty("packets").GetInt64();
    }

    public static IPAddress VtepIp(int n) => IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"10.245.{n}.0"));

    /// <summary>
    /// Waits until the kernel has freed these programs and maps (freeing is deferred); true if all are gone in time.
    /// </summary>
    public static bool FreedByKernel(IEnumerable<uint> programIds, IEnumerable<uint> mapIds)
    {
        var bpftool = Shell.Require("bpftool");
        var ids = programIds.Select(id => (Kind: "prog", Id: id)).Concat(mapIds.Select(id => (Kind: "map", Id: id))).ToArray();
        return Shell.WaitFor(
            () => ids.All(x => !Shell.Run(bpftool, [x.Kind, "show", "id", x.Id.ToString(CultureInfo.InvariantCulture)]).Ok),
            TimeSpan.FromSeconds(10));
    }

    public void ZeroForwardCounters(int n) => Iptables(n, "-Z", "FORWARD");

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var s in _servers)
        {
            s.Dispose();
        }

        for (var i = _namespaces.Count - 1; i >= 0; i--)
        {
            _namespaces[i].Dispose();
        }

        _stop.Dispose();
    }

    private void BuildNode(int n, int bridge)
    {
        var node = Add(string.Create(CultureInfo.InvariantCulture, $"node{n}"));
        _nodes[n - 1] = node;
        var nl = node.Netlink;
        nl.LinkSetUp(nl.LinkByName("lo")!.Index);
        // No IPv6: the node's link-local chatter (DAD, MLD) on the pods' veths would blur per-device packet counts.
        Sysctl(node, "net.ipv6.conf.all.disable_ipv6=1");
        Sysctl(node, "net.ipv6.conf.default.disable_ipv6=1");
        Sysctl(node, "net.ipv4.ip_forward=1");
        Sysctl(node, "net.ipv4.conf.all.send_redirects=0");
        _underlay[n - 1] = Plug(node, bridge, string.Create(CultureInfo.InvariantCulture, $"u-node{n}"), "eth1");
        nl.AddrAdd(_underlay[n - 1], NodeIp(n), 24);
        // As Cilium's cilium_host / cilium_net: a veth pair holding the router IP (this kernel has no dummy driver).
        var host = nl.LinkAdd(new VethSpec("loom_host", "loom_net")).Index;
        nl.AddrAdd(host, RouterIp(n), 32);
        nl.LinkSetUp(host);
        nl.LinkSetUp(nl.LinkByName("loom_net")!.Index);
        for (var i = 1; i <= 2; i++)
        {
            var pod = Add(string.Create(CultureInfo.InvariantCulture, $"n{n}pod{i}"));
            _pods[n - 1, i - 1] = pod;
            var lxc = nl.LinkAdd(new VethSpec(string.Create(CultureInfo.InvariantCulture, $"lxc{i}"), "eth0") { PeerNetNs = pod.Handle }).Index;
            _lxc[n - 1, i - 1] = lxc;
            nl.LinkSetUp(lxc);
            nl.RouteAdd(new Route(new IPNetwork(PodIp(n, i), 32)) { OutputIndex = lxc, Scope = RouteScope.Link });
            var pnl = pod.Netlink;
            pnl.LinkSetUp(pnl.LinkByName("lo")!.Index);
            var eth0 = pnl.LinkByName("eth0")!.Index;
            pnl.AddrAdd(eth0, PodIp(n, i), 32);
            pnl.LinkSetUp(eth0);
            pnl.RouteAdd(new Route(new IPNetwork(RouterIp(n), 32)) { OutputIndex = eth0, Scope = RouteScope.Link });
            pnl.RouteAdd(new Route(IPNetwork.Parse("0.0.0.0/0")) { Gateway = RouterIp(n), OutputIndex = eth0 });
            // The router's MAC is the host veth's, fixed (as Cilium programs it): the pod never ARPs for it.
            pnl.NeighAdd(new Neigh(eth0, RouterIp(n), nl.LinkByIndex(lxc)!.HardwareAddr));
            Serve(pod);
        }

        var r = Iptables(n, "-I", "FORWARD", "-s", PodPool, "-d", PodPool);
        if (!r.Ok)
        {
            throw new InvalidOperationException(r.ToString());
        }
    }

    private TestNetns Add(string tag)
    {
        var ns = new TestNetns(tag);
        _namespaces.Add(ns);
        return ns;
    }

    /// <summary>A veth from the wire's bridge to <paramref name="ns"/> (named <paramref name="inside"/> there); its ifindex there.</summary>
    private int Plug(TestNetns ns, int bridge, string wireSide, string inside)
    {
        var wnl = Wire.Netlink;
        var port = wnl.LinkAdd(new VethSpec(wireSide, inside) { PeerNetNs = ns.Handle }).Index;
        wnl.LinkSetMaster(port, bridge);
        wnl.LinkSetUp(port);
        var index = ns.Netlink.LinkByName(inside)!.Index;
        ns.Netlink.LinkSetUp(index);
        return index;
    }

    private ShellRun Iptables(int n, params string[] args) =>
        Shell.InNetns(Node(n).Name, new[] { Shell.Require("iptables"), "-w" }.Concat(args));

    private static void Sysctl(TestNetns ns, string setting)
    {
        var r = Shell.InNetns(ns.Name, [Shell.Require("sysctl"), "-qw", setting]);
        if (!r.Ok)
        {
            throw new InvalidOperationException(r.ToString());
        }
    }

    /// <summary>TCP and UDP servers on <see cref="Port"/> in <paramref name="ns"/> answering with the client's address.</summary>
    private void Serve(TestNetns ns)
    {
        var tcp = ns.Run(() =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new IPEndPoint(IPAddress.Any, Port));
            l.Listen(64);
            return l;
        });
        _servers.Add(tcp);
        var udp = ns.Run(() =>
        {
            var u = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            u.Bind(new IPEndPoint(IPAddress.Any, Port));
            return u;
        });
        _servers.Add(udp);
        var token = _stop.Token;
        _ = Task.Run(async () =>
        {
            while (!token.IsCancellationRequested)
            {
                try
                {
                    using var c = await tcp.AcceptAsync(token);
                    var who = ((IPEndPoint)c.RemoteEndPoint!).Address + "\n";
                    await c.SendAsync(Encoding.ASCII.GetBytes(who), token);
                    c.Shutdown(SocketShutdown.Both);
                }
                catch (Exception) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (SocketException)
                {
                }
            }
        }, token);
        _ = Task.Run(async () =>
        {
            var buf = new byte[64];
            EndPoint any = new IPEndPoint(IPAddress.Any, 0);
            while (!token.IsCancellationRequested)
            {
                try
                {
                    var r = await udp.ReceiveFromAsync(buf, any, token);
                    var who = ((IPEndPoint)r.RemoteEndPoint).Address + "\n";
                    await udp.SendToAsync(Encoding.ASCII.GetBytes(who), r.RemoteEndPoint, token);
                }
                catch (Exception) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (SocketException)
                {
                }
            }
        }, token);
    }
}
