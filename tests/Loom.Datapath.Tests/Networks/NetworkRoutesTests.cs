using System.Net;
using System.Net.NetworkInformation;
using Loom.Core.Reconcile;
using Loom.Datapath.Networks;
using Loom.Linux;
using Loom.Testing.Fakes;

namespace Loom.Datapath.Tests.Networks;

/// <summary>
/// One node's per-network routing on <see cref="FakeNetlink"/>: golden dumps after peers come, change and go, two
/// tunnel networks and a native one side by side, drift the full pass repairs, a network removed to the last entry.
/// </summary>
public sealed class NetworkRoutesTests : IDisposable
{
    private static readonly IPAddress SelfIp = IPAddress.Parse("192.168.10.100");
    private readonly FakeNetlink _nl = new();
    private readonly Link _eth1;

    public NetworkRoutesTests()
    {
        _eth1 = _nl.LinkAdd(new BridgeSpec("eth1") { Mtu = 1500 });
        _nl.AddrAdd(_eth1.Index, SelfIp, 24);
        _nl.LinkSetUp(_eth1.Index);
    }

    public void Dispose() => _nl.Dispose();

    internal static NetworkRouting Flannel(int underlay, IPAddress ip, int self = 0) =>
        new("flannel", RoutingMode.Tunnel, IPNetwork.Parse("10.244.0.0/16"), IPNetwork.Parse($"10.244.{self}.0/24"), underlay, ip)
        {
            Tunnel = new TunnelSettings("loom.1", 8472, 1),
        };

    internal static NetworkRouting CiliumTunnel(int underlay, IPAddress ip, int self = 0) =>
        new("cilium", RoutingMode.Tunnel, IPNetwork.Parse("10.245.0.0/16"), IPNetwork.Parse($"10.245.{self}.0/24"), underlay, ip)
        {
            Tunnel = new TunnelSettings("loom_vxlan", 8473, 2),
        };

    internal static NetworkRouting Native(int underlay, IPAddress ip, int self = 0) =>
        new("native", RoutingMode.Native, IPNetwork.Parse("10.246.0.0/16"), IPNetwork.Parse($"10.246.{self}.0/24"), underlay, ip);

    private static NetworkPeer Peer(NetworkRouting net, int n, int mac = 0) =>
        new($"w{n}", IPAddress.Parse($"192.168.10.{100 + n}"), new IPNetwork(Block(net, n), 24))
        {
            VtepMac = net.Mode == RoutingMode.Tunnel ? PhysicalAddress.Parse($"02-aa-00-00-00-{mac + n:x2}") : null,
        };

    private static IPAddress Block(NetworkRouting net, int n)
    {
        var b = net.PodCidr.BaseAddress.GetAddressBytes();
        b[2] = (byte)n;
        return new IPAddress(b);
    }

    private NetworkRouteOperations Ops(NetworkRouting net) => new(_nl, net);

    private static Task Put(NetworkRouteOperations ops, NetworkPeer p) => ops.UpdateAsync(p.Node, p, CancellationToken.None);

    private static Task Drop(NetworkRouteOperations ops, string node) => ops.DeleteAsync(node, CancellationToken.None);

    private static Task<int> Full(NetworkRouteOperations ops, params NetworkPeer[] peers) =>
        ops.PruneAsync(peers.ToDictionary(p => p.Node), CancellationToken.None);

    private const string Base = """
        addr eth1 192.168.10.100/24
        link eth1 bridge mtu 1500 up mac 02:4c:4d:00:00:02
        link lo device mtu 65536 down mac 00:00:00:00:00:00
        route 192.168.10.0/24 dev eth1 proto kernel scope link src 192.168.10.100

        """;

    private static string Lines(string text) => text.ReplaceLineEndings("\n");

    private static string With(params string[] lines) =>
        string.Concat(Lines(Base).Split('\n', StringSplitOptions.RemoveEmptyEntries).Concat(lines).Order(StringComparer.Ordinal).Select(l => l + "\n"));

    [Fact]
    public async Task Tunnel_peers_added_changed_and_removed_leave_exactly_their_entries()
    {
        var net = Flannel(_eth1.Index, SelfIp);
        var ops = Ops(net);
        await Put(ops, Peer(net, 1));
        await Put(ops, Peer(net, 2));
        Assert.Equal(With(
            "link loom.1 vxlan mtu 1450 up mac 02:4c:4d:00:00:03 vni 1 port 8472 local 192.168.10.100 dev eth1 nolearning",
            "addr loom.1 10.244.0.0/32",
            "fdb 02:aa:00:00:00:01 dev loom.1 dst 192.168.10.101 permanent",
            "fdb 02:aa:00:00:00:02 dev loom.1 dst 192.168.10.102 permanent",
            "neigh 10.244.1.0 dev loom.1 lladdr 02:aa:00:00:00:01 permanent",
            "neigh 10.244.2.0 dev loom.1 lladdr 02:aa:00:00:00:02 permanent",
            "route 10.244.1.0/24 via 10.244.1.0 dev loom.1 proto 76 scope universe onlink",
            "route 10.244.2.0/24 via 10.244.2.0 dev loom.1 proto 76 scope universe onlink"), _nl.Dump());

        // w2 re-created its device (new MAC) and moved to another underlay address; w1 took a new block.
        await Put(ops, Peer(net, 2, mac: 0x10) with { NodeIp = IPAddress.Parse("192.168.10.120") });
        await Put(ops, Peer(net, 1) with { Block = IPNetwork.Parse("10.244.7.0/24") });
        Assert.Equal(With(
            "link loom.1 vxlan mtu 1450 up mac 02:4c:4d:00:00:03 vni 1 port 8472 local 192.168.10.100 dev eth1 nolearning",
            "addr loom.1 10.244.0.0/32",
            "fdb 02:aa:00:00:00:01 dev loom.1 dst 192.168.10.101 permanent",
            "fdb 02:aa:00:00:00:12 dev loom.1 dst 192.168.10.120 permanent",
            "neigh 10.244.2.0 dev loom.1 lladdr 02:aa:00:00:00:12 permanent",
            "neigh 10.244.7.0 dev loom.1 lladdr 02:aa:00:00:00:01 permanent",
            "route 10.244.2.0/24 via 10.244.2.0 dev loom.1 proto 76 scope universe onlink",
            "route 10.244.7.0/24 via 10.244.7.0 dev loom.1 proto 76 scope universe onlink"), _nl.Dump());

        await Drop(ops, "w2");
        await Drop(ops, "w1");
        Assert.Equal(With(
            "link loom.1 vxlan mtu 1450 up mac 02:4c:4d:00:00:03 vni 1 port 8472 local 192.168.10.100 dev eth1 nolearning",
            "addr loom.1 10.244.0.0/32"), _nl.Dump());
    }

    [Fact]
    public async Task A_peer_written_again_unchanged_touches_nothing()
    {
        foreach (var net in new[] { Flannel(_eth1.Index, SelfIp), Native(_eth1.Index, SelfIp) })
        {
            var ops = Ops(net);
            await Put(ops, Peer(net, 1));
            var writes = _nl.Writes;
            await Put(ops, Peer(net, 1));
            Assert.Equal(0, await Full(ops, Peer(net, 1)));
            Assert.Equal(writes, _nl.Writes);
        }
    }

    [Fact]
    public async Task A_device_deleted_under_written_peers_comes_back_with_all_of_them_on_the_next_update()
    {
        var net = Flannel(_eth1.Index, SelfIp);
        var ops = Ops(net);
        await Put(ops, Peer(net, 1));
        await Put(ops, Peer(net, 2));
        var written = _nl.Dump();

        _nl.LinkDel(_nl.LinkByName("loom.1")!.Index);
        await Put(ops, Peer(net, 2));
        Assert.Equal(written, _nl.Dump().Replace("02:4c:4d:00:00:04", "02:4c:4d:00:00:03", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_block_that_moved_to_another_node_keeps_the_route_that_node_wrote()
    {
        var net = Native(_eth1.Index, SelfIp);
        var ops = Ops(net);
        await Put(ops, Peer(net, 1));
        await Put(ops, Peer(net, 2));

        // w1's block 10.246.1.0/24 now belongs to w2 (written first), w1 got 10.246.3.0/24.
        await Put(ops, Peer(net, 2) with { Block = IPNetwork.Parse("10.246.1.0/24") });
        await Put(ops, Peer(net, 1) with { Block = IPNetwork.Parse("10.246.3.0/24") });
        Assert.Equal(With(
            "route 10.246.1.0/24 via 192.168.10.102 dev eth1 proto 76 scope universe",
            "route 10.246.3.0/24 via 192.168.10.101 dev eth1 proto 76 scope universe"), _nl.Dump());
    }

    [Fact]
    public async Task Two_tunnels_and_a_native_network_side_by_side_and_one_removed_leaves_the_others_as_they_were()
    {
        var flannel = Ops(Flannel(_eth1.Index, SelfIp));
        var native = Ops(Native(_eth1.Index, SelfIp));
        await Put(flannel, Peer(flannel.Routing, 1));
        await Put(native, Peer(native.Routing, 1));
        var without = _nl.Dump();

        var cilium = Ops(CiliumTunnel(_eth1.Index, SelfIp));
        await Put(cilium, Peer(cilium.Routing, 1, mac: 0x20));
        await Put(cilium, Peer(cilium.Routing, 2, mac: 0x20));
        Assert.Equal(With(
            "link loom.1 vxlan mtu 1450 up mac 02:4c:4d:00:00:03 vni 1 port 8472 local 192.168.10.100 dev eth1 nolearning",
            "link loom_vxlan vxlan mtu 1450 up mac 02:4c:4d:00:00:04 vni 2 port 8473 local 192.168.10.100 dev eth1 nolearning",
            "addr loom.1 10.244.0.0/32",
            "addr loom_vxlan 10.245.0.0/32",
            "fdb 02:aa:00:00:00:01 dev loom.1 dst 192.168.10.101 permanent",
            "fdb 02:aa:00:00:00:21 dev loom_vxlan dst 192.168.10.101 permanent",
            "fdb 02:aa:00:00:00:22 dev loom_vxlan dst 192.168.10.102 permanent",
            "neigh 10.244.1.0 dev loom.1 lladdr 02:aa:00:00:00:01 permanent",
            "neigh 10.245.1.0 dev loom_vxlan lladdr 02:aa:00:00:00:21 permanent",
            "neigh 10.245.2.0 dev loom_vxlan lladdr 02:aa:00:00:00:22 permanent",
            "route 10.244.1.0/24 via 10.244.1.0 dev loom.1 proto 76 scope universe onlink",
            "route 10.245.1.0/24 via 10.245.1.0 dev loom_vxlan proto 76 scope universe onlink",
            "route 10.245.2.0/24 via 10.245.2.0 dev loom_vxlan proto 76 scope universe onlink",
            "route 10.246.1.0/24 via 192.168.10.101 dev eth1 proto 76 scope universe"), _nl.Dump());

        Assert.Equal(1, cilium.Remove());
        Assert.Equal(without, _nl.Dump());
        Assert.Equal(1, native.Remove());
        Assert.Equal(1, flannel.Remove());
        Assert.Equal(Lines(Base), _nl.Dump());
    }

    [Fact]
    public async Task The_full_pass_repairs_drift_and_leaves_routes_of_others_alone()
    {
        var flannel = Ops(Flannel(_eth1.Index, SelfIp));
        var native = Ops(Native(_eth1.Index, SelfIp));
        NetworkPeer[] fp = [Peer(flannel.Routing, 1), Peer(flannel.Routing, 2)];
        NetworkPeer[] np = [Peer(native.Routing, 1), Peer(native.Routing, 2)];
        Assert.True(await Full(flannel, fp) > 0); // a fresh node: the pass creates everything
        Assert.True(await Full(native, np) > 0);
        var clean = _nl.Dump();

        // Someone else's routes, inside a pool and out: not Loom's protocol, or another pool.
        var foreign = new Route(IPNetwork.Parse("10.246.50.0/24")) { Gateway = IPAddress.Parse("192.168.10.1"), OutputIndex = _eth1.Index };
        var otherPool = new Route(IPNetwork.Parse("10.247.1.0/24")) { Gateway = IPAddress.Parse("192.168.10.1"), OutputIndex = _eth1.Index, Protocol = NetworkRouting.Protocol };
        _nl.RouteAdd(foreign);
        _nl.RouteAdd(otherPool);
        clean = _nl.Dump();

        var dev = _nl.LinkByName("loom.1")!;
        _nl.RouteDel(new Route(IPNetwork.Parse("10.244.2.0/24")) { OutputIndex = dev.Index });
        _nl.NeighSet(new Neigh(dev.Index, IPAddress.Parse("10.244.1.0"), PhysicalAddress.Parse("02-bb-00-00-00-01")));
        _nl.FdbAppend(dev.Index, PhysicalAddress.Parse("02-bb-00-00-00-09"), IPAddress.Parse("192.168.10.109"));
        _nl.RouteReplace(new Route(IPNetwork.Parse("10.246.2.0/24")) { Gateway = IPAddress.Parse("192.168.10.1"), OutputIndex = _eth1.Index, Protocol = NetworkRouting.Protocol });
        _nl.RouteAdd(new Route(IPNetwork.Parse("10.246.9.0/24")) { Gateway = IPAddress.Parse("192.168.10.109"), OutputIndex = _eth1.Index, Protocol = NetworkRouting.Protocol });
        _nl.RouteAdd(new Route(IPNetwork.Parse("10.244.9.0/24")) { Gateway = IPAddress.Parse("192.168.10.109"), OutputIndex = _eth1.Index, Protocol = NetworkRouting.Protocol });

        // flannel: the missing route, the wrong neighbour (delete + set), the unknown FDB entry, the stray off its device.
        Assert.Equal(5, await Full(flannel, fp));
        // native: the wrong gateway (replaced in place), the stray block.
        Assert.Equal(2, await Full(native, np));
        Assert.Equal(clean, _nl.Dump());
        Assert.Equal(0, await Full(flannel, fp));
        Assert.Equal(0, await Full(native, np));

        // A deleted device comes back with its peers.
        _nl.LinkDel(dev.Index);
        Assert.True(await Full(flannel, fp) > 0);
        Assert.Equal(clean, _nl.Dump().Replace("02:4c:4d:00:00:04", "02:4c:4d:00:00:03", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Through_the_reconciler_a_network_comes_and_goes_whole()
    {
        var routes = new NetworkRoutes(_nl, CiliumTunnel(_eth1.Index, SelfIp), TimeProvider.System,
            new ReconcilerOptions { FullPassInterval = Timeout.InfiniteTimeSpan });
        using var stop = new CancellationTokenSource();
        var run = routes.RunAsync(stop.Token);
        var net = routes.Routing;

        routes.SetPeers([Peer(net, 1), Peer(net, 2), Peer(net, 3)]);
        await routes.Reconciler.WaitIdleAsync();
        routes.SetPeers([Peer(net, 1), Peer(net, 3, mac: 0x40)]);
        await routes.Reconciler.WaitIdleAsync();
        Assert.Equal(0, await routes.Reconciler.FullPassAsync());
        Assert.All(routes.Reconciler.Status(), r => Assert.Equal(RowState.Done, r.State));
        Assert.Equal(With(
            "link loom_vxlan vxlan mtu 1450 up mac 02:4c:4d:00:00:03 vni 2 port 8473 local 192.168.10.100 dev eth1 nolearning",
            "addr loom_vxlan 10.245.0.0/32",
            "fdb 02:aa:00:00:00:01 dev loom_vxlan dst 192.168.10.101 permanent",
            "fdb 02:aa:00:00:00:43 dev loom_vxlan dst 192.168.10.103 permanent",
            "neigh 10.245.1.0 dev loom_vxlan lladdr 02:aa:00:00:00:01 permanent",
            "neigh 10.245.3.0 dev loom_vxlan lladdr 02:aa:00:00:00:43 permanent",
            "route 10.245.1.0/24 via 10.245.1.0 dev loom_vxlan proto 76 scope universe onlink",
            "route 10.245.3.0/24 via 10.245.3.0 dev loom_vxlan proto 76 scope universe onlink"), _nl.Dump());

        Assert.Throws<InvalidOperationException>(() => routes.Remove());
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.Equal(1, routes.Remove());
        Assert.Equal(Lines(Base), _nl.Dump());
        Assert.Throws<ObjectDisposedException>(() => routes.SetPeers([]));
    }

    [Fact]
    public void Bad_peers_are_refused_by_name_and_no_row_changes()
    {
        var routes = new NetworkRoutes(_nl, Flannel(_eth1.Index, SelfIp), TimeProvider.System);
        var net = routes.Routing;
        routes.SetPeers([Peer(net, 1)]);
        var good = Peer(net, 2);

        void Refused(string expected, params NetworkPeer[] peers)
        {
            var e = Assert.Throws<ArgumentException>(() => routes.SetPeers(peers));
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
            Assert.Equal(["w1"], routes.Reconciler.Desired.Keys);
        }

        Refused("block 10.245.2.0/24 is not a /24 of podCIDR 10.244.0.0/16", good, good with { Node = "w3", Block = IPNetwork.Parse("10.245.2.0/24") });
        Refused("block 10.244.0.0/22 is not a /24", good, good with { Node = "w3", Block = IPNetwork.Parse("10.244.0.0/22") });
        Refused("block 10.244.0.0/24 is this node's own", good with { Block = IPNetwork.Parse("10.244.0.0/24") });
        Refused("node IP 192.168.10.100 is not another node's", good with { NodeIp = SelfIp });
        Refused("node IP 10.244.9.9 is not", good with { NodeIp = IPAddress.Parse("10.244.9.9") });
        Refused("VTEP MAC (none) is not a unicast", good with { VtepMac = null });
        Refused("VTEP MAC 01005E000001 is not a unicast", good with { VtepMac = PhysicalAddress.Parse("01-00-5e-00-00-01") });
        Refused("peer w2 listed 2 times", good, good);
        Refused("block 10.244.2.0/24 claimed by peers w2, w3", good, good with { Node = "w3", NodeIp = IPAddress.Parse("192.168.10.103") });
        Assert.DoesNotContain(_nl.LinkList(), l => l.Kind == "vxlan");
    }

    [Fact]
    public async Task A_row_holding_a_bad_peer_fails_with_the_reason()
    {
        var ops = Ops(Native(_eth1.Index, SelfIp));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => ops.UpdateAsync("w1", Peer(ops.Routing, 2), CancellationToken.None));
        Assert.Contains("row w1 holds peer w2", e.Message, StringComparison.Ordinal);
        Assert.Equal(Lines(Base), _nl.Dump());
    }

    [Theory]
    [InlineData("tunnel: missing on a tunnel network", RoutingMode.Tunnel, null, 8472, 1u, "10.244.0.0/24")]
    [InlineData("tunnel: set on a native network", RoutingMode.Native, "loom.1", 8472, 1u, "10.244.0.0/24")]
    [InlineData("tunnel.device \"loom_vxlan_tunnel0\": not an interface name", RoutingMode.Tunnel, "loom_vxlan_tunnel0", 8473, 2u, "10.244.0.0/24")]
    [InlineData("tunnel.device \"a/b\"", RoutingMode.Tunnel, "a/b", 8473, 2u, "10.244.0.0/24")]
    [InlineData("tunnel.port: 0", RoutingMode.Tunnel, "loom.1", 0, 1u, "10.244.0.0/24")]
    [InlineData("tunnel.vni 16777216: not in 1-16777215", RoutingMode.Tunnel, "loom.1", 8472, 16777216u, "10.244.0.0/24")]
    [InlineData("tunnel.vni 0", RoutingMode.Tunnel, "loom.1", 8472, 0u, "10.244.0.0/24")]
    [InlineData("localBlock 10.99.0.0/24: not inside podCIDR 10.244.0.0/16", RoutingMode.Native, null, 0, 0u, "10.99.0.0/24")]
    public void Bad_network_settings_are_refused_naming_the_key(string expected, RoutingMode mode, string? device, int port, uint vni, string local)
    {
        var net = new NetworkRouting("n", mode, IPNetwork.Parse("10.244.0.0/16"), IPNetwork.Parse(local), _eth1.Index, SelfIp)
        {
            Tunnel = device is null ? null : new TunnelSettings(device, (ushort)port, vni),
        };
        var e = Assert.Throws<ArgumentException>(() => new NetworkRoutes(_nl, net, TimeProvider.System));
        Assert.Contains($"network n: {expected}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_underlay_is_an_error_not_a_device()
    {
        var ops = Ops(Flannel(99, SelfIp));
        var e = Assert.Throws<InvalidOperationException>(() => ops.EnsureDevice());
        Assert.Contains("underlay ifindex 99 does not exist", e.Message, StringComparison.Ordinal);
        Assert.Null(_nl.LinkByName("loom.1"));
    }
}
