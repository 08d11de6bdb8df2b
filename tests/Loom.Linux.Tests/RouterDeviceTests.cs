using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Loom.Linux.Interop;
using Loom.Testing;

namespace Loom.Linux.Tests;

/// <summary>The routed plumbing's kernel pieces: IFLA_IFALIAS on links and the loom_host/loom_net router device.</summary>
public class RouterDeviceTests
{
    [Fact]
    public void Alias_is_sent_without_a_nul_and_read_back_as_iproute2_shows_it()
    {
        var req = new NlRequest(Rtm.NEWLINK, 0);
        req.Attr(Ifla.IFALIAS, Encoding.UTF8.GetBytes("loom-cni:t"));
        var bytes = req.Finish(1).ToArray()[Nl.HeaderSize..];
        Assert.Equal((ushort)(4 + 10), BinaryPrimitives.ReadUInt16LittleEndian(bytes));
        Assert.Equal(20, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2)));

        using var ns = new TestNetns("alias");
        var link = ns.Netlink.LinkAdd(new VethSpec("al0", "al1"));
        Assert.Null(link.Alias);
        ns.Netlink.LinkSetAlias(link.Index, "loom-cni:t");
        Assert.Equal("loom-cni:t", ns.Netlink.LinkByIndex(link.Index)!.Alias);
        Assert.Equal("loom-cni:t", ns.Netlink.LinkList().Single(l => l.Name == "al0").Alias);
        using var doc = JsonDocument.Parse(Shell.Run("ip", $"-n {ns.Name} -j link show al0"));
        Assert.Equal("loom-cni:t", doc.RootElement[0].GetProperty("ifalias").GetString());

        Assert.Throws<ArgumentException>(() => ns.Netlink.LinkSetAlias(link.Index, new string('a', 256)));
    }

    [Fact]
    public void Ensure_creates_the_pair_up_with_the_router_ip_as_a_32_and_is_idempotent()
    {
        using var ns = new TestNetns("rtr");
        var router = IPAddress.Parse("10.245.1.1");
        var first = RouterDevice.Ensure(ns.Netlink, router);
        var again = RouterDevice.Ensure(ns.Netlink, router);
        Assert.Equal(first.Index, again.Index);
        Assert.Equal(("loom_host", "veth"), (again.Name, again.Kind));
        Assert.True(again.IsUp);
        Assert.True(ns.Netlink.LinkByName("loom_net")!.IsUp);
        var addr = Assert.Single(ns.Netlink.AddrList(again.Index, AddressFamily.InterNetwork));
        Assert.Equal((router, 32), (addr.Ip, addr.PrefixLength));
        Assert.Equal("loom_host", RouterDevice.HolderOf(ns.Netlink, router)?.Name);

        RouterDevice.Delete(ns.Netlink);
        Assert.Null(ns.Netlink.LinkByName("loom_host"));
        Assert.Null(ns.Netlink.LinkByName("loom_net"));
        Assert.Null(RouterDevice.HolderOf(ns.Netlink, router));
        RouterDevice.Delete(ns.Netlink); // nothing left to remove is success
    }

    [Fact]
    public void Ensure_refuses_a_loom_host_that_is_not_a_veth()
    {
        using var ns = new TestNetns("rtb");
        ns.Netlink.LinkAdd(new BridgeSpec("loom_host"));
        var e = Assert.Throws<InvalidOperationException>(() => RouterDevice.Ensure(ns.Netlink, IPAddress.Parse("10.245.1.1")));
        Assert.Contains("not a veth (kind bridge)", e.Message, StringComparison.Ordinal);
        Assert.Empty(ns.Netlink.AddrList(ns.Netlink.LinkByName("loom_host")!.Index, AddressFamily.InterNetwork));
    }
}
