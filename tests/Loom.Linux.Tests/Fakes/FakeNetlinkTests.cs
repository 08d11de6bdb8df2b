using System.Net;
using Loom.Testing.Fakes;

namespace Loom.Linux.Tests.Fakes;

/// <summary>The fake alone (no root): its golden dump after the script, and what the dump cannot show.</summary>
public class FakeNetlinkTests
{
    [Fact]
    public void Golden_dump_after_the_node_script()
    {
        using var nl = new FakeNetlink();
        var log = FakeNetlinkScript.Run(nl);

        Assert.Equal(
            """
            addr cni0 10.244.1.1/24
            addr uplink 192.168.50.1/24
            fdb 00:00:00:00:00:00 dev flannel.1 dst 192.168.50.3 permanent
            fdb aa:bb:cc:00:00:02 dev flannel.1 dst 192.168.50.2 permanent
            link cni0 bridge mtu 1500 up mac 02:00:00:00:00:01 promisc
            link eth1 veth mtu 1500 down mac 02:00:00:00:00:03 peer veth1
            link flannel.1 vxlan mtu 1450 up mac 02:00:00:00:00:05 vni 1 port 8472 local 192.168.50.1 dev uplink nolearning
            link lo device mtu 65536 down mac 00:00:00:00:00:00
            link uplink bridge mtu 9000 up mac 02:00:00:00:00:04
            link veth1 veth mtu 1500 up mac 02:00:00:00:00:02 peer eth1 master cni0
            neigh 10.244.2.0 dev flannel.1 lladdr aa:bb:cc:00:00:09 permanent
            route 10.0.0.0/8 via 192.168.50.254 dev uplink proto boot scope universe
            route 10.244.1.0/24 dev cni0 proto kernel scope link src 10.244.1.1
            route 10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto boot scope universe metric 100 onlink
            route 10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto boot scope universe onlink
            route 192.168.50.0/24 dev uplink proto kernel scope link src 192.168.50.1
            route blackhole 10.3.0.0/16 proto boot scope universe

            """.ReplaceLineEndings("\n"), nl.Dump());
        Assert.Contains("add cni0 again: RTM_NEWLINK errno 17", log);
        Assert.Contains("del missing addr: RTM_DELADDR errno 99", log);
        Assert.Contains("route unreachable gw: RTM_NEWROUTE errno 101", log);
        Assert.Contains("route via down link: RTM_NEWROUTE errno 100", log);
        Assert.Contains("del missing route: RTM_DELROUTE errno 3", log);
        Assert.Contains("set up missing link: RTM_NEWLINK errno 19", log);
        Assert.True(nl.Hairpin(nl.LinkByName("veth1")!.Index));
    }

    [Fact]
    public void Connected_routes_follow_the_link_state_and_the_address()
    {
        using var nl = new FakeNetlink();
        var br = nl.LinkAdd(new BridgeSpec("br0"));
        nl.AddrAdd(br.Index, IPAddress.Parse("10.1.0.1"), 16);
        Assert.Empty(nl.RouteList());

        nl.LinkSetUp(br.Index);
        var connected = Assert.Single(nl.RouteList());
        Assert.Equal((IPNetwork.Parse("10.1.0.0/16"), RouteProtocol.Kernel), (connected.Destination, connected.Protocol));

        var writes = nl.Writes;
        nl.AddrDel(br.Index, IPAddress.Parse("10.1.0.1"), 16);
        Assert.Empty(nl.RouteList());
        Assert.Equal(writes + 1, nl.Writes);
    }
}
