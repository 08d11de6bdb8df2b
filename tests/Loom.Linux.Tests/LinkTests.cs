using System.Net;
using System.Net.NetworkInformation;
using System.Text.Json;

using Loom.Testing;

namespace Loom.Linux.Tests;

public class LinkTests
{
    [Fact]
    public void Veth_peer_is_created_directly_in_another_namespace()
    {
        using var a = new TestNetns("va");
        using var b = new TestNetns("vb");
        var peerMac = PhysicalAddress.Parse("02-00-00-00-00-b1");

        var veth = a.Netlink.LinkAdd(new VethSpec("veth0", "eth0")
        {
            Mtu = 1450,
            PeerNetNs = b.Handle,
            PeerHardwareAddr = peerMac,
        });

        Assert.Equal("veth", veth.Kind);
        Assert.Equal(1450, veth.Mtu);
        Assert.Null(a.Netlink.LinkByName("eth0"));

        var peer = b.Netlink.LinkByName("eth0");
        Assert.NotNull(peer);
        Assert.Equal("veth", peer.Kind);
        Assert.Equal(peerMac, peer.HardwareAddr);
        Assert.Equal(1450, peer.Mtu); // peer MTU defaults to the link's
        Assert.Equal(veth.Index, peer.ParentIndex);
        Assert.Equal(peer.Index, veth.ParentIndex);
        Assert.NotNull(peer.LinkNetNsId);

        // Cross-check with iproute2 inside the namespace.
        using var doc = JsonDocument.Parse(Shell.Run("ip", $"-n {b.Name} -j link show eth0"));
        Assert.Equal("02:00:00:00:00:b1", doc.RootElement[0].GetProperty("address").GetString());
    }

    [Fact]
    public void Bridge_with_master_nomaster_up_down_mtu_and_mac()
    {
        using var ns = new TestNetns("br");
        var nl = ns.Netlink;
        var mac = PhysicalAddress.Parse("02-00-00-00-00-0b");
        var br = nl.LinkAdd(new BridgeSpec("br0") { Mtu = 1400, HardwareAddr = mac });
        Assert.Equal("bridge", br.Kind);
        Assert.Equal(mac, br.HardwareAddr);
        Assert.Equal(1400, br.Mtu);
        Assert.False(br.IsUp);

        var veth = nl.LinkAdd(new VethSpec("veth1", "veth1p"));
        nl.LinkSetMtu(veth.Index, 1400);
        nl.LinkSetMaster(veth.Index, br.Index);
        nl.LinkSetUp(br.Index);
        nl.LinkSetUp(veth.Index);
        var newMac = PhysicalAddress.Parse("02-00-00-00-00-11");
        nl.LinkSetHardwareAddr(veth.Index, newMac);

        var got = nl.LinkByIndex(veth.Index)!;
        Assert.Equal(br.Index, got.MasterIndex);
        Assert.True(got.IsUp);
        Assert.Equal(1400, got.Mtu);
        Assert.Equal(newMac, got.HardwareAddr);
        Assert.True(nl.LinkByIndex(br.Index)!.IsUp);

        nl.LinkSetNoMaster(veth.Index);
        nl.LinkSetDown(veth.Index);
        got = nl.LinkByIndex(veth.Index)!;
        Assert.Equal(0, got.MasterIndex);
        Assert.False(got.IsUp);

        var names = nl.LinkList().Select(l => l.Name).ToHashSet();
        Assert.Superset(new HashSet<string> { "lo", "br0", "veth1", "veth1p" }, names);

        nl.LinkDel(veth.Index); // deleting one end removes the pair
        Assert.Null(nl.LinkByName("veth1"));
        Assert.Null(nl.LinkByName("veth1p"));
        Assert.Null(nl.LinkByIndex(veth.Index));
    }

    [Fact]
    public void Vxlan_settings_read_back()
    {
        using var ns = new TestNetns("vx");
        var nl = ns.Netlink;
        var underlay = nl.LinkAdd(new BridgeSpec("under0"));
        var vx = nl.LinkAdd(new VxlanSpec("flannel.1", 1)
        {
            Port = 8472,
            Local = IPAddress.Parse("192.0.2.10"),
            UnderlayIndex = underlay.Index,
            Learning = false,
            Mtu = 1450,
        });

        Assert.Equal("vxlan", vx.Kind);
        Assert.Equal(1450, vx.Mtu);
        Assert.Equal(new VxlanInfo(1, 8472, IPAddress.Parse("192.0.2.10"), underlay.Index, Learning: false), vx.Vxlan);

        using var doc = JsonDocument.Parse(Shell.Run("ip", $"-n {ns.Name} -d -j link show flannel.1"));
        var data = doc.RootElement[0].GetProperty("linkinfo").GetProperty("info_data");
        Assert.Equal(1, data.GetProperty("id").GetInt32());
        Assert.Equal(8472, data.GetProperty("port").GetInt32());
        Assert.Equal("192.0.2.10", data.GetProperty("local").GetString());
        Assert.False(data.GetProperty("learning").GetBoolean());
    }

    [Fact]
    public void Link_moved_to_another_namespace_by_fd()
    {
        using var a = new TestNetns("mva");
        using var b = new TestNetns("mvb");
        // Bridges are NETIF_F_NETNS_LOCAL ("The interface netns is immutable"); veth ends can move.
        a.Netlink.LinkAdd(new VethSpec("mv0", "mv0p"));
        var p = a.Netlink.LinkByName("mv0p")!;
        a.Netlink.LinkSetNsFd(p.Index, b.Handle);
        Assert.Null(a.Netlink.LinkByName("mv0p"));
        Assert.Equal("veth", b.Netlink.LinkByName("mv0p")?.Kind);

        var br = a.Netlink.LinkAdd(new BridgeSpec("mvbr"));
        var ex = Assert.Throws<NetlinkException>(() => a.Netlink.LinkSetNsFd(br.Index, b.Handle));
        Assert.Equal(22, ex.Errno);
        Assert.NotNull(ex.KernelMessage);
    }

    [Fact]
    public void Duplicate_link_name_fails_with_EEXIST_and_operation()
    {
        using var ns = new TestNetns("dup");
        ns.Netlink.LinkAdd(new BridgeSpec("dup0"));
        var ex = Assert.Throws<NetlinkException>(() => ns.Netlink.LinkAdd(new BridgeSpec("dup0")));
        Assert.Equal(17, ex.Errno);
        Assert.Equal("RTM_NEWLINK", ex.Operation);
        Assert.StartsWith("RTM_NEWLINK dup0: File exists (errno 17)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Netlink_socket_stays_bound_to_its_namespace_on_any_thread()
    {
        using var ns = new TestNetns("bind");
        ns.Netlink.LinkAdd(new BridgeSpec("only-here"));
        // Used from a thread-pool thread (root namespace) it still sees the test namespace.
        var seen = await Task.Run(() => ns.Netlink.LinkByName("only-here"));
        Assert.NotNull(seen);
        using var root = Netlink.Open(); // read-only look at root
        Assert.Null(root.LinkByName("only-here"));
    }
}
