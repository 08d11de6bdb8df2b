using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text.Json;

using Loom.Testing;

namespace Loom.Linux.Tests;

public class NeighFdbSysctlTests
{
    [Fact]
    public void Permanent_neighbour_add_replace_list_delete()
    {
        using var ns = new TestNetns("nb");
        var nl = ns.Netlink;
        var vx = nl.LinkAdd(new VxlanSpec("flannel.1", 1) { Learning = false });
        nl.LinkSetUp(vx.Index);
        var ip = IPAddress.Parse("10.244.1.0");
        var mac = PhysicalAddress.Parse("02-00-00-00-01-01");
        nl.NeighAdd(new Neigh(vx.Index, ip, mac));

        // IPv6 adds NOARP multicast entries (ff02::16) on its own, so look at IPv4 only.
        var got = Assert.Single(nl.NeighList(vx.Index, AddressFamily.InterNetwork));
        Assert.Equal(new Neigh(vx.Index, ip, mac) { State = NeighState.Permanent }, got);
        Assert.Equal(17, Assert.Throws<NetlinkException>(() => nl.NeighAdd(new Neigh(vx.Index, ip, mac))).Errno);

        var mac2 = PhysicalAddress.Parse("02-00-00-00-01-02");
        nl.NeighSet(new Neigh(vx.Index, ip, mac2));
        Assert.Equal(mac2, Assert.Single(nl.NeighList(vx.Index, AddressFamily.InterNetwork)).HardwareAddr);
        Assert.Contains("02:00:00:00:01:02", Shell.Run("ip", $"-n {ns.Name} -j neigh show dev flannel.1"), StringComparison.Ordinal);

        var v6 = IPAddress.Parse("fd00::5");
        nl.NeighSet(new Neigh(vx.Index, v6, mac));
        Assert.Contains(nl.NeighList(vx.Index, AddressFamily.InterNetworkV6), n => n.Ip.Equals(v6) && n.State == NeighState.Permanent);

        nl.NeighDel(new Neigh(vx.Index, ip, null));
        nl.NeighDel(new Neigh(vx.Index, v6, null));
        Assert.DoesNotContain(nl.NeighList(vx.Index), n => n.State == NeighState.Permanent);
    }

    [Fact]
    public void Fdb_append_of_two_remotes_list_and_delete()
    {
        using var ns = new TestNetns("fdb");
        var nl = ns.Netlink;
        var vx = nl.LinkAdd(new VxlanSpec("vx0", 42) { Learning = false, Port = 4789 });
        // Two remotes per MAC only work for the all-zero flood entry (head-end replication).
        var mac = PhysicalAddress.Parse("00-00-00-00-00-00");
        var r1 = IPAddress.Parse("192.0.2.1");
        var r2 = IPAddress.Parse("192.0.2.2");
        nl.FdbAppend(vx.Index, mac, r1);
        nl.FdbAppend(vx.Index, mac, r2);

        var entries = nl.FdbList(vx.Index).Where(e => e.HardwareAddr.Equals(mac)).ToArray();
        Assert.Equal("192.0.2.1,192.0.2.2", string.Join(",", entries.Select(e => e.Destination!.ToString()).Order(StringComparer.Ordinal)));
        Assert.All(entries, e =>
        {
            Assert.Equal(NeighState.Permanent, e.State);
            Assert.True(e.Flags.HasFlag(NeighFlags.Self));
        });

        using (var doc = JsonDocument.Parse(Shell.Run("bridge", $"-n {ns.Name} -j fdb show dev vx0")))
        {
            var dsts = doc.RootElement.EnumerateArray()
                .Where(e => e.GetProperty("mac").GetString() == "00:00:00:00:00:00")
                .Select(e => e.GetProperty("dst").GetString()!).Order(StringComparer.Ordinal).ToArray();
            Assert.Equal("192.0.2.1,192.0.2.2", string.Join(",", dsts));
        }

        // A unicast MAC (one per remote VTEP, as flannel does) keeps its first remote; a second append is a no-op.
        var vtep = PhysicalAddress.Parse("02-00-00-00-02-01");
        nl.FdbAppend(vx.Index, vtep, r1);
        nl.FdbAppend(vx.Index, vtep, r2);
        Assert.Equal(r1, Assert.Single(nl.FdbList(vx.Index), e => e.HardwareAddr.Equals(vtep)).Destination);
        nl.FdbDel(vx.Index, vtep);
        Assert.DoesNotContain(nl.FdbList(vx.Index), e => e.HardwareAddr.Equals(vtep));

        nl.FdbDel(vx.Index, mac, r1);
        Assert.Equal(r2, Assert.Single(nl.FdbList(vx.Index), e => e.HardwareAddr.Equals(mac)).Destination);
        nl.FdbDel(vx.Index, mac, r2);
        Assert.DoesNotContain(nl.FdbList(vx.Index), e => e.HardwareAddr.Equals(mac));
    }

    [Fact]
    public void Sysctl_inside_Run_acts_on_the_namespace_only()
    {
        var rootBefore = Sysctl.Get("net.ipv4.ip_forward"); // read only; root is never written
        using var ns = new TestNetns("sys");
        var br = ns.Netlink.LinkAdd(new BridgeSpec("br0"));

        var inside = ns.Run(() =>
        {
            var fresh = Sysctl.Get("net.ipv4.ip_forward");
            Sysctl.Set("net.ipv4.ip_forward", "1");
            Sysctl.Set($"net.ipv4.conf.{br.Name}.rp_filter", "2");
            Sysctl.Set($"net/ipv4/conf/{br.Name}/proxy_arp", "1");
            return (fresh, Sysctl.Get("net.ipv4.ip_forward"), Sysctl.Get($"net.ipv4.conf.{br.Name}.rp_filter"), Sysctl.Get($"net.ipv4.conf.{br.Name}.proxy_arp"));
        });

        Assert.Equal(("0", "1", "2", "1"), inside);
        Assert.Equal(rootBefore, Sysctl.Get("net.ipv4.ip_forward"));
        Assert.False(Directory.Exists($"/proc/sys/net/ipv4/conf/{br.Name}")); // br0 exists only in the namespace
        Assert.Equal("1", ns.Run(() => Sysctl.Get("net.ipv4.ip_forward")));
    }

    [Theory]
    [InlineData("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward")]
    [InlineData("net/ipv4/conf/eth0.100/rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter")]
    public void Sysctl_paths(string name, string path) => Assert.Equal(path, Sysctl.PathOf(name));

    [Fact]
    public void Sysctl_rejects_traversal() => Assert.Throws<ArgumentException>(() => Sysctl.PathOf("net/../../etc/passwd"));
}
