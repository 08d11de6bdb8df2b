using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Reconcile;
using Loom.Datapath.Networks;
using Loom.Linux;
using Loom.Testing;
using Loom.Testing.Fakes;

namespace Loom.Datapath.Tests.Networks;

/// <summary>
/// Two node namespaces joined by a veth underlay (eth1, 192.168.77.n/24), each with one pod per network behind a
/// veth: flannel's tunnel (loom.1, 8472), a second tunnel (loom_vxlan, 8473) and a native network, all programmed at
/// once. Pods reach each other across nodes over each network; a removed network leaves nothing of its own.
/// Everything lives in this run's namespaces.
/// </summary>
public sealed class NetworkKernelTests : IDisposable
{
    private const int Port = 7070;
    private static readonly string[] Names = ["flannel", "cilium", "native"];
    private readonly PodNetwork[] _nodes = new PodNetwork[2];
    private readonly List<(NetworkRoutes Routes, CancellationTokenSource Stop, Task Run)> _running = [];

    public NetworkKernelTests()
    {
        try
        {
            _nodes[0] = new PodNetwork("n1");
            _nodes[1] = new PodNetwork("n2");
            var n1 = Node(1).Netlink;
            var eth1 = n1.LinkAdd(new VethSpec("eth1", "eth1") { PeerNetNs = Node(2).Handle, Mtu = 1500 });
            for (var n = 1; n <= 2; n++)
            {
                var nl = Node(n).Netlink;
                var link = n == 1 ? eth1 : nl.LinkByName("eth1")!;
                nl.AddrAdd(link.Index, NodeIp(n), 24);
                nl.LinkSetUp(link.Index);
                Node(n).Run(() => Sysctl.Set("net.ipv4.ip_forward", "1"));
                for (var net = 0; net < Names.Length; net++)
                {
                    // Pod p of node n: 10.(244+p).n.2 behind a veth whose node end is 10.(244+p).n.1.
                    _nodes[n - 1].AddPod(PodIp(n, net), IPAddress.Parse($"10.{244 + net}.{n}.1"));
                    _nodes[n - 1].Serve(net + 1, Port, $"{Names[net]}@n{n}", echo: false);
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var (_, stop, run) in _running)
        {
            stop.Cancel();
            _ = run.ContinueWith(_ => { }, TaskScheduler.Default).Wait(5000);
            stop.Dispose();
        }

        foreach (var n in _nodes)
        {
            n?.Dispose();
        }
    }

    private TestNetns Node(int n) => _nodes[n - 1].Node;

    private static IPAddress NodeIp(int n) => IPAddress.Parse($"192.168.77.{n}");

    private static IPAddress PodIp(int node, int net) => IPAddress.Parse($"10.{244 + net}.{node}.2");

    private NetworkRouting Routing(int node, int net)
    {
        var eth1 = Node(node).Netlink.LinkByName("eth1")!.Index;
        return net switch
        {
            0 => NetworkRoutesTests.Flannel(eth1, NodeIp(node), node),
            1 => NetworkRoutesTests.CiliumTunnel(eth1, NodeIp(node), node),
            _ => NetworkRoutesTests.Native(eth1, NodeIp(node), node),
        };
    }

    /// <summary>Programs network <paramref name="net"/> on both nodes, each with the other as its peer, and waits until written.</summary>
    private async Task<NetworkRoutes[]> StartAsync(int net)
    {
        var routes = new NetworkRoutes[2];
        var macs = new System.Net.NetworkInformation.PhysicalAddress?[2];
        for (var n = 1; n <= 2; n++)
        {
            routes[n - 1] = new NetworkRoutes(Node(n).Netlink, Routing(n, net), TimeProvider.System,
                new ReconcilerOptions { FullPassInterval = Timeout.InfiniteTimeSpan });
            macs[n - 1] = routes[n - 1].Operations.EnsureDevice()?.HardwareAddr;
            var stop = new CancellationTokenSource();
            _running.Add((routes[n - 1], stop, routes[n - 1].RunAsync(stop.Token)));
        }

        for (var n = 1; n <= 2; n++)
        {
            var other = 3 - n;
            routes[n - 1].SetPeers([new NetworkPeer($"n{other}", NodeIp(other), Routing(other, net).LocalBlock) { VtepMac = macs[other - 1] }]);
            await routes[n - 1].Reconciler.WaitIdleAsync();
            Assert.All(routes[n - 1].Reconciler.Status(), r => Assert.Equal(RowState.Done, r.State));
        }

        return routes;
    }

    private async Task StopAndRemoveAsync(NetworkRoutes[] routes)
    {
        foreach (var r in routes)
        {
            var entry = _running.Single(x => x.Routes == r);
            await entry.Stop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => entry.Run);
            _running.Remove(entry);
            entry.Stop.Dispose();
            Assert.True(r.Remove() > 0);
        }
    }

    private void AssertReach(int net)
    {
        for (var from = 1; from <= 2; from++)
        {
            var to = 3 - from;
            var pod = _nodes[from - 1].Pod(net + 1);
            Assert.Equal($"{Names[net]}@n{to}", Tcp(pod, PodIp(to, net)));
            Assert.Equal($"{Names[net]}@n{to}", PodNetwork.Udp(pod, PodIp(to, net), Port, 3000));
        }
    }

    private static string Tcp(TestNetns from, IPAddress ip)
    {
        using var s = PodNetwork.Connect(from, ip, Port, 3000);
        s.ReceiveTimeout = 3000;
        var buf = new byte[64];
        var n = s.Receive(buf);
        return Encoding.ASCII.GetString(buf, 0, n);
    }

    private static void Unreachable(TestNetns from, IPAddress ip)
    {
        var e = Record.Exception(() => Tcp(from, ip));
        Assert.True(e is TimeoutException or SocketException, $"{ip} answered or failed otherwise: {e}");
    }

    /// <summary>The node's links, addresses, routes, permanent neighbours and FDB entries (ARP's own entries come and go).</summary>
    private string Dump(int node) =>
        string.Concat(NetlinkDump.Of(Node(node).Netlink).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.StartsWith("neigh ", StringComparison.Ordinal) || l.EndsWith(" permanent", StringComparison.Ordinal))
            .Select(l => l + "\n"));

    [Fact]
    public async Task Pods_reach_each_other_across_nodes_over_two_tunnels_and_a_native_network_and_a_removed_network_leaves_nothing()
    {
        string[] bare = [Dump(1), Dump(2)];
        var flannel = await StartAsync(0);
        var native = await StartAsync(2);
        string[] before = [Dump(1), Dump(2)];

        var cilium = await StartAsync(1);
        for (var net = 0; net < Names.Length; net++)
        {
            AssertReach(net);
        }

        Assert.Contains("link loom.1 vxlan mtu 1450 up", Dump(1), StringComparison.Ordinal);
        Assert.Contains("vni 2 port 8473 local 192.168.77.1 dev eth1 nolearning", Dump(1), StringComparison.Ordinal);
        Assert.Contains("route 10.246.2.0/24 via 192.168.77.2 dev eth1 proto 76 scope universe", Dump(1), StringComparison.Ordinal);
        Assert.Contains("route 10.245.1.0/24 via 10.245.1.0 dev loom_vxlan proto 76 scope universe onlink", Dump(2), StringComparison.Ordinal);

        await StopAndRemoveAsync(cilium);
        Assert.Equal(before[0], Dump(1));
        Assert.Equal(before[1], Dump(2));
        AssertReach(0);
        AssertReach(2);
        Unreachable(_nodes[0].Pod(2), PodIp(2, 1));

        await StopAndRemoveAsync(native);
        await StopAndRemoveAsync(flannel);
        Assert.Equal(bare[0], Dump(1));
        Assert.Equal(bare[1], Dump(2));
    }

    [Fact]
    public async Task A_restarted_node_repairs_drift_on_its_first_full_pass()
    {
        var flannel = await StartAsync(0);
        var native = await StartAsync(2);
        var clean = Dump(1);
        var nl = Node(1).Netlink;
        var loom1 = nl.LinkByName("loom.1")!;
        var eth1 = nl.LinkByName("eth1")!;

        // What a crash could leave: a peer's route gone, a Loom route to a node that left, a foreign route kept.
        nl.RouteDel(new Route(IPNetwork.Parse("10.244.2.0/24")) { OutputIndex = loom1.Index });
        nl.RouteAdd(new Route(IPNetwork.Parse("10.246.9.0/24")) { Gateway = NodeIp(2), OutputIndex = eth1.Index, Protocol = NetworkRouting.Protocol });
        nl.RouteAdd(new Route(IPNetwork.Parse("10.246.8.0/24")) { Gateway = NodeIp(2), OutputIndex = eth1.Index });
        Unreachable(_nodes[0].Pod(1), PodIp(2, 0));

        Assert.Equal(1, await flannel[0].Reconciler.FullPassAsync());
        Assert.Equal(1, await native[0].Reconciler.FullPassAsync());
        const string Foreign = "route 10.246.8.0/24 via 192.168.77.2 dev eth1 proto boot scope universe\n";
        Assert.Contains(Foreign, Dump(1), StringComparison.Ordinal);
        Assert.Equal(clean, Dump(1).Replace(Foreign, "", StringComparison.Ordinal));
        AssertReach(0);
    }
}
