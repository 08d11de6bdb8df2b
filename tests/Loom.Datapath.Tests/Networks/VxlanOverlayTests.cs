using System.Net;
using System.Net.NetworkInformation;
using Loom.Datapath.Networks;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Datapath.Tests.Networks;

/// <summary>The overlay reconciler against a real kernel, in a namespace of the test's own.</summary>
public sealed class VxlanOverlayTests : IDisposable
{
    private static readonly IPNetwork NodeCidr = IPNetwork.Parse("10.244.0.0/24");
    private readonly TestNetns _node = new("vx");
    private readonly Link _underlay;

    public VxlanOverlayTests()
    {
        // A bridge stands in for eth1: it only has to exist, be up and carry the node's underlay address.
        var nl = _node.Netlink;
        _underlay = nl.LinkAdd(new BridgeSpec("eth1") { Mtu = 1500 });
        nl.AddrAdd(_underlay.Index, IPAddress.Parse("192.168.10.100"), 24);
        nl.LinkSetUp(_underlay.Index);
        _underlay = nl.LinkByIndex(_underlay.Index)!;
    }

    public void Dispose() => _node.Dispose();

    private Link Device() =>
        VxlanDevice.Ensure(_node.Netlink, "loom.1", 1, 8472, IPAddress.Parse("192.168.10.100"), _underlay, NodeCidr);

    private static VxlanPeer Peer(int n, string mac) =>
        new($"k8s-w{n}", IPNetwork.Parse($"10.244.{n}.0/24"), IPAddress.Parse($"192.168.10.10{n}"), PhysicalAddress.Parse(mac));

    [Fact]
    public void Device_is_shaped_like_flannels()
    {
        var dev = Device();
        Assert.Equal("vxlan", dev.Kind);
        Assert.Equal(1450, dev.Mtu);
        Assert.True(dev.IsUp);
        Assert.Equal(new VxlanInfo(1, 8472, IPAddress.Parse("192.168.10.100"), _underlay.Index, Learning: false), dev.Vxlan);
        var addr = Assert.Single(_node.Netlink.AddrList(dev.Index, System.Net.Sockets.AddressFamily.InterNetwork));
        Assert.Equal((IPAddress.Parse("10.244.0.0"), 32), (addr.Ip, addr.PrefixLength));
    }

    [Fact]
    public void An_existing_device_of_the_right_shape_is_adopted_with_its_mac()
    {
        var first = Device();
        var again = Device();
        Assert.Equal(first.Index, again.Index);
        Assert.Equal(first.HardwareAddr, again.HardwareAddr);
    }

    [Fact]
    public void A_device_of_the_wrong_shape_is_replaced()
    {
        var wrong = _node.Netlink.LinkAdd(new VxlanSpec("loom.1", 42) { Port = 4789, UnderlayIndex = _underlay.Index });
        var dev = Device();
        Assert.NotEqual(wrong.Index, dev.Index);
        Assert.Equal(1u, dev.Vxlan!.Vni);
    }

    [Fact]
    public void Peers_get_route_neighbour_and_fdb_entries_and_lose_them_when_they_leave()
    {
        var dev = Device();
        var w1 = Peer(1, "02-00-00-00-00-01");
        var w2 = Peer(2, "02-00-00-00-00-02");
        var nl = _node.Netlink;

        var changes = VxlanRoutes.Reconcile(nl, dev, [w1, w2]);
        Assert.Equal(new VxlanRoutes.Changes(6, 0), changes);
        foreach (var p in new[] { w1, w2 })
        {
            Assert.Contains(nl.RouteList(), r => r.Destination.Equals(p.PodCidr) && p.VtepIp.Equals(r.Gateway) && r.OutputIndex == dev.Index && r.OnLink);
            Assert.Contains(nl.NeighList(dev.Index), n => n.Ip.Equals(p.VtepIp) && p.VtepMac.Equals(n.HardwareAddr) && n.State.HasFlag(NeighState.Permanent));
            Assert.Contains(nl.FdbList(dev.Index), f => p.VtepMac.Equals(f.HardwareAddr) && p.UnderlayIp.Equals(f.Destination));
        }

        Assert.False(VxlanRoutes.Reconcile(nl, dev, [w1, w2]).Any); // in sync: nothing touched

        Assert.Equal(new VxlanRoutes.Changes(0, 3), VxlanRoutes.Reconcile(nl, dev, [w1]));
        Assert.DoesNotContain(nl.RouteList(), r => r.Destination.Equals(w2.PodCidr));
        Assert.DoesNotContain(nl.NeighList(dev.Index), n => n.Ip.Equals(w2.VtepIp));
        Assert.DoesNotContain(nl.FdbList(dev.Index), f => w2.VtepMac.Equals(f.HardwareAddr));
    }

    [Fact]
    public void A_peer_whose_vtep_mac_changed_is_rewritten()
    {
        var dev = Device();
        var nl = _node.Netlink;
        VxlanRoutes.Reconcile(nl, dev, [Peer(1, "02-00-00-00-00-01")]);
        var moved = Peer(1, "02-00-00-00-00-99");
        VxlanRoutes.Reconcile(nl, dev, [moved]);
        Assert.Equal(moved.VtepMac, Assert.Single(nl.NeighList(dev.Index), n => n.Ip.Equals(moved.VtepIp)).HardwareAddr);
        Assert.Equal(moved.VtepMac, Assert.Single(nl.FdbList(dev.Index), f => f.Destination is not null && !f.HardwareAddr.GetAddressBytes().All(b => b == 0)).HardwareAddr);
    }

    [Fact]
    public void Routes_the_agent_did_not_make_are_left_alone()
    {
        var dev = Device();
        var nl = _node.Netlink;
        var foreign = new Route(IPNetwork.Parse("172.16.0.0/16")) { OutputIndex = _underlay.Index, Gateway = IPAddress.Parse("192.168.10.1") };
        nl.RouteAdd(foreign);
        VxlanRoutes.Reconcile(nl, dev, []);
        Assert.Contains(nl.RouteList(), r => r.Destination.Equals(foreign.Destination));
    }
}
