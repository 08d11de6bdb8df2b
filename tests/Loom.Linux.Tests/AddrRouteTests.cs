using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

using Loom.Testing;

namespace Loom.Linux.Tests;

public class AddrRouteTests
{
    private static readonly IPAddress A1 = IPAddress.Parse("10.99.0.1");

    [Fact]
    public void Address_add_list_delete_ipv4_and_ipv6()
    {
        using var ns = new TestNetns("addr");
        var nl = ns.Netlink;
        var br = nl.LinkAdd(new BridgeSpec("br0"));
        var v6 = IPAddress.Parse("fd00:99::1");
        nl.AddrAdd(br.Index, A1, 24);
        nl.AddrAdd(br.Index, v6, 64);

        var v4 = Assert.Single(nl.AddrList(br.Index, AddressFamily.InterNetwork));
        Assert.Equal(new Addr(br.Index, A1, 24) { Broadcast = IPAddress.Parse("10.99.0.255"), Label = "br0", Flags = v4.Flags }, v4);
        Assert.Contains(nl.AddrList(br.Index, AddressFamily.InterNetworkV6), a => a.Ip.Equals(v6) && a.PrefixLength == 64);

        using (var doc = JsonDocument.Parse(Shell.Run("ip", $"-n {ns.Name} -j addr show br0")))
        {
            var infos = doc.RootElement[0].GetProperty("addr_info").EnumerateArray().Select(e => e.GetProperty("local").GetString()).ToArray();
            Assert.Contains("10.99.0.1", infos);
            Assert.Contains("fd00:99::1", infos);
        }

        var dup = Assert.Throws<NetlinkException>(() => nl.AddrAdd(br.Index, A1, 24));
        Assert.Equal(17, dup.Errno);
        Assert.Equal("RTM_NEWADDR", dup.Operation);

        nl.AddrDel(br.Index, A1, 24);
        nl.AddrDel(br.Index, v6, 64);
        Assert.Empty(nl.AddrList(br.Index, AddressFamily.InterNetwork));
        Assert.DoesNotContain(nl.AddrList(br.Index), a => a.Ip.Equals(v6));
    }

    [Fact]
    public void Route_add_replace_list_delete_with_onlink_via_vxlan()
    {
        using var ns = new TestNetns("rt");
        var nl = ns.Netlink;
        var vx = nl.LinkAdd(new VxlanSpec("flannel.1", 1) { Port = 8472, Learning = false });
        nl.LinkSetUp(vx.Index);
        nl.AddrAdd(vx.Index, IPAddress.Parse("10.244.0.0"), 32);

        // flannel: 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink
        var route = new Route(IPNetwork.Parse("10.244.1.0/24"))
        {
            Gateway = IPAddress.Parse("10.244.1.0"),
            OutputIndex = vx.Index,
            OnLink = true,
        };
        nl.RouteAdd(route);
        var got = Assert.Single(nl.RouteList(AddressFamily.InterNetwork), r => r.Destination == route.Destination);
        Assert.Equal(route.Gateway, got.Gateway);
        Assert.Equal(vx.Index, got.OutputIndex);
        Assert.True(got.OnLink);
        Assert.Equal(RouteScope.Universe, got.Scope);
        Assert.Equal(RouteProtocol.Boot, got.Protocol);
        Assert.Equal(Route.MainTable, got.Table);

        var again = Assert.Throws<NetlinkException>(() => nl.RouteAdd(route));
        Assert.Equal(17, again.Errno);

        // Replace changes the metric-less route in place; then add a default route and a src hint.
        nl.RouteReplace(route with { Gateway = IPAddress.Parse("10.244.1.1"), PreferredSource = IPAddress.Parse("10.244.0.0") });
        got = Assert.Single(nl.RouteList(AddressFamily.InterNetwork), r => r.Destination == route.Destination);
        Assert.Equal(IPAddress.Parse("10.244.1.1"), got.Gateway);
        Assert.Equal(IPAddress.Parse("10.244.0.0"), got.PreferredSource);

        var def = new Route(new IPNetwork(IPAddress.Any, 0)) { Gateway = IPAddress.Parse("10.244.1.0"), OutputIndex = vx.Index, OnLink = true, Priority = 50 };
        nl.RouteAdd(def);
        Assert.Contains(nl.RouteList(AddressFamily.InterNetwork), r => r.Destination.PrefixLength == 0 && r.Priority == 50);
        Assert.Contains("\"dst\":\"default\"", Shell.Run("ip", $"-n {ns.Name} -j route show"), StringComparison.Ordinal);

        nl.RouteDel(new Route(route.Destination)); // unset fields match anything
        nl.RouteDel(def);
        Assert.DoesNotContain(nl.RouteList(AddressFamily.InterNetwork), r => r.Destination == route.Destination || r.Destination.PrefixLength == 0);
    }

    [Fact]
    public void Ipv6_and_custom_table_routes()
    {
        using var ns = new TestNetns("rt6");
        var nl = ns.Netlink;
        var br = nl.LinkAdd(new BridgeSpec("br6"));
        nl.LinkSetUp(br.Index);
        var r = new Route(IPNetwork.Parse("fd00:1::/64")) { OutputIndex = br.Index, Table = 1000, Protocol = RouteProtocol.Static, Priority = 7 };
        nl.RouteAdd(r);
        var got = Assert.Single(nl.RouteList(AddressFamily.InterNetworkV6, 1000));
        Assert.Equal(r.Destination, got.Destination);
        Assert.Equal(RouteProtocol.Static, got.Protocol);
        Assert.Equal(7u, got.Priority);
        Assert.DoesNotContain(nl.RouteList(AddressFamily.InterNetworkV6), x => x.Destination == r.Destination);
        nl.RouteDel(r);
        Assert.Empty(nl.RouteList(AddressFamily.InterNetworkV6, 1000));
    }

    [Fact]
    public void Route_via_unreachable_gateway_carries_kernel_message()
    {
        using var ns = new TestNetns("rterr");
        var nl = ns.Netlink;
        var br = nl.LinkAdd(new BridgeSpec("br0"));
        nl.LinkSetUp(br.Index);
        var ex = Assert.Throws<NetlinkException>(() => nl.RouteAdd(new Route(IPNetwork.Parse("10.5.0.0/16")) { Gateway = IPAddress.Parse("10.6.0.1") }));
        Assert.Equal("RTM_NEWROUTE", ex.Operation);
        Assert.Equal(101, ex.Errno); // ENETUNREACH
        Assert.False(string.IsNullOrEmpty(ex.KernelMessage));
        Assert.Contains(ex.KernelMessage!, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tcp_connects_between_two_namespaces_through_a_veth()
    {
        using var a = new TestNetns("tcpa");
        using var b = new TestNetns("tcpb");
        var va = a.Netlink.LinkAdd(new VethSpec("veth0", "veth0") { PeerNetNs = b.Handle });
        var vb = b.Netlink.LinkByName("veth0")!;
        var ipA = IPAddress.Parse("10.98.0.1");
        a.Netlink.AddrAdd(va.Index, ipA, 24);
        b.Netlink.AddrAdd(vb.Index, IPAddress.Parse("10.98.0.2"), 24);
        a.Netlink.LinkSetUp(va.Index);
        b.Netlink.LinkSetUp(vb.Index);

        // Sockets, like netlink sockets, belong to the namespace they were created in.
        using var listener = a.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(ipA, 0));
            s.Listen(1);
            return s;
        });
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        using var client = b.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { SendTimeout = 5000, ReceiveTimeout = 5000 };
            s.Connect(new IPEndPoint(ipA, port));
            return s;
        });
        client.Send(Encoding.ASCII.GetBytes("loom"));
        using var server = listener.Accept();
        var buf = new byte[4];
        server.ReceiveTimeout = 5000;
        var n = 0;
        while (n < 4)
        {
            n += server.Receive(buf, n, 4 - n, SocketFlags.None);
        }

        Assert.Equal("loom", Encoding.ASCII.GetString(buf));
    }
}
