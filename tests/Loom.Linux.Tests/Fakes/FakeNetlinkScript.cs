using System.Net;
using System.Net.NetworkInformation;
using Loom.Linux;

namespace Loom.Linux.Tests.Fakes;

/// <summary>
/// A node's worth of netlink calls (flannel-style bridge, veth, vxlan with onlink routes, neighbours and FDB), with
/// the mistakes a reconciler can make mixed in. Run against the fake and a real namespace, it must give the same
/// outcomes (errno per call) and the same dump.
/// </summary>
internal static class FakeNetlinkScript
{
    public static readonly string[] Links = ["lo", "cni0", "veth1", "eth1", "uplink", "flannel.1"];

    public static List<string> Run(INetlink nl)
    {
        var log = new List<string>();
        void Try(string what, Action action)
        {
            try
            {
                action();
                log.Add($"{what}: ok");
            }
            catch (NetlinkException e)
            {
                log.Add($"{what}: {e.Operation} errno {e.Errno}");
            }
        }

        int Index(string name) => nl.LinkByName(name)?.Index ?? 999;
        var peerMac = PhysicalAddress.Parse("aa-bb-cc-00-00-02");

        Try("add cni0", () => nl.LinkAdd(new BridgeSpec("cni0") { HardwareAddr = Mac(1) }));
        Try("add cni0 again", () => nl.LinkAdd(new BridgeSpec("cni0")));
        Try("add long name", () => nl.LinkAdd(new BridgeSpec("abcdefghijklmnop")));
        Try("add veth", () => nl.LinkAdd(new VethSpec("veth1", "eth1") { HardwareAddr = Mac(2), PeerHardwareAddr = Mac(3) }));
        Try("add uplink", () => nl.LinkAdd(new BridgeSpec("uplink") { HardwareAddr = Mac(4), Mtu = 9000 }));
        Try("uplink up", () => nl.LinkSetUp(Index("uplink")));
        Try("uplink addr", () => nl.AddrAdd(Index("uplink"), IPAddress.Parse("192.168.50.1"), 24));
        Try("add vxlan", () => nl.LinkAdd(new VxlanSpec("flannel.1", 1)
        {
            HardwareAddr = Mac(5), Local = IPAddress.Parse("192.168.50.1"), UnderlayIndex = Index("uplink"), Learning = false, Port = 8472, Mtu = 1450,
        }));
        Try("veth1 master cni0", () => nl.LinkSetMaster(Index("veth1"), Index("cni0")));
        Try("eth1 master veth1", () => nl.LinkSetMaster(Index("eth1"), Index("veth1")));
        Try("hairpin veth1", () => nl.LinkSetHairpin(Index("veth1"), true));
        Try("mtu 10", () => nl.LinkSetMtu(Index("cni0"), 10));
        Try("promisc cni0", () => nl.LinkSetPromisc(Index("cni0"), true));
        foreach (var name in new[] { "cni0", "veth1", "flannel.1" })
        {
            Try($"{name} up", () => nl.LinkSetUp(Index(name)));
        }

        Try("cni0 addr", () => nl.AddrAdd(Index("cni0"), IPAddress.Parse("10.244.1.1"), 24));
        Try("cni0 addr again", () => nl.AddrAdd(Index("cni0"), IPAddress.Parse("10.244.1.1"), 24));
        Try("del missing addr", () => nl.AddrDel(Index("cni0"), IPAddress.Parse("10.244.1.9"), 24));
        Try("addr on missing link", () => nl.AddrAdd(999, IPAddress.Parse("10.9.9.9"), 24));

        var remote = new Route(IPNetwork.Parse("10.244.2.0/24")) { Gateway = IPAddress.Parse("10.244.2.0"), OutputIndex = Index("flannel.1"), OnLink = true };
        Try("route onlink", () => nl.RouteAdd(remote));
        Try("route onlink again", () => nl.RouteAdd(remote));
        Try("route replace metric", () => nl.RouteReplace(remote with { Priority = 100 }));
        Try("route via uplink gw", () => nl.RouteAdd(new Route(IPNetwork.Parse("10.0.0.0/8")) { Gateway = IPAddress.Parse("192.168.50.254") }));
        Try("route unreachable gw", () => nl.RouteAdd(new Route(IPNetwork.Parse("10.1.0.0/16")) { Gateway = IPAddress.Parse("172.16.0.1") }));
        Try("route via down link", () => nl.RouteAdd(new Route(IPNetwork.Parse("10.2.0.0/16")) { OutputIndex = Index("eth1") }));
        Try("route blackhole", () => nl.RouteAdd(new Route(IPNetwork.Parse("10.3.0.0/16")) { Type = RouteType.Blackhole }));
        Try("del missing route", () => nl.RouteDel(new Route(IPNetwork.Parse("10.4.0.0/16"))));

        var neigh = new Neigh(Index("flannel.1"), IPAddress.Parse("10.244.2.0"), peerMac);
        Try("neigh", () => nl.NeighAdd(neigh));
        Try("neigh again", () => nl.NeighAdd(neigh));
        Try("neigh replace", () => nl.NeighSet(neigh with { HardwareAddr = PhysicalAddress.Parse("aa-bb-cc-00-00-09") }));
        Try("del missing neigh", () => nl.NeighDel(neigh with { Ip = IPAddress.Parse("10.244.3.0") }));

        Try("fdb", () => nl.FdbAppend(Index("flannel.1"), peerMac, IPAddress.Parse("192.168.50.2")));
        Try("fdb second remote for unicast", () => nl.FdbAppend(Index("flannel.1"), peerMac, IPAddress.Parse("192.168.50.3")));
        Try("fdb flood 2", () => nl.FdbAppend(Index("flannel.1"), new PhysicalAddress(new byte[6]), IPAddress.Parse("192.168.50.2")));
        Try("fdb flood 3", () => nl.FdbAppend(Index("flannel.1"), new PhysicalAddress(new byte[6]), IPAddress.Parse("192.168.50.3")));
        Try("fdb flood 3 again", () => nl.FdbAppend(Index("flannel.1"), new PhysicalAddress(new byte[6]), IPAddress.Parse("192.168.50.3")));
        Try("fdb del flood 2", () => nl.FdbDel(Index("flannel.1"), new PhysicalAddress(new byte[6]), IPAddress.Parse("192.168.50.2")));
        Try("fdb del missing", () => nl.FdbDel(Index("flannel.1"), PhysicalAddress.Parse("aa-bb-cc-00-00-07")));

        Try("del missing link", () => nl.LinkDel(999));
        Try("set up missing link", () => nl.LinkSetUp(999));
        return log;
    }

    /// <summary>Tear-down steps after the dump: deleting one veth end removes both; a down link loses its routes.</summary>
    public static List<string> TearDown(INetlink nl)
    {
        var log = new List<string>();
        nl.LinkDel(nl.LinkByName("eth1")!.Index);
        log.Add($"veth1 left: {nl.LinkByName("veth1") is not null}");
        nl.LinkSetDown(nl.LinkByName("flannel.1")!.Index);
        log.Add($"routes via flannel.1: {nl.RouteList().Count(r => r.OutputIndex == nl.LinkByName("flannel.1")!.Index)}");
        nl.LinkSetDown(nl.LinkByName("cni0")!.Index);
        log.Add($"routes via cni0: {nl.RouteList().Count(r => r.OutputIndex == nl.LinkByName("cni0")!.Index)}");
        return log;
    }

    private static PhysicalAddress Mac(byte n) => new([0x02, 0, 0, 0, 0, n]);
}
