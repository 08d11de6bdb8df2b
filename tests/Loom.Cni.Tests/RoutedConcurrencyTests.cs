using System.Net;
using System.Net.Sockets;
using Loom.Linux;

namespace Loom.Cni.Tests;

/// <summary>50 routed ADDs at once, each its own plugin process, into 50 pod namespaces on one node; then 50 DELs.</summary>
public sealed class RoutedConcurrencyTests : IDisposable
{
    private const int Pods = 50;
    private readonly CniNode _node = new("10.245.1.0/24");

    public void Dispose() => _node.Dispose();

    [Fact]
    public void Fifty_parallel_routed_adds_get_distinct_addresses_and_routes_and_fifty_dels_leave_nothing()
    {
        _node.EnsureRouter();
        var conf = _node.RoutedConf().ToJsonString();
        var pods = Enumerable.Range(0, Pods).Select(i => _node.NewPod("r")).ToArray();

        var adds = ConcurrencyTests.InParallel(Pods, i => _node.Exec("ADD", conf, $"rconc-{i}", pods[i]));
        Assert.All(adds, r => Assert.True(r.Ok, r.ToString()));
        var ips = adds.Select(r => CniNode.IpOf(AddResultShapeTests.Parse(r.Stdout))).ToArray();
        Assert.Equal(Pods, ips.Distinct().Count());
        Assert.DoesNotContain("10.245.1.1", ips); // the router IP is never handed out
        Assert.All(ips, ip => Assert.StartsWith("10.245.1.", ip, StringComparison.Ordinal));

        var routes = _node.Netlink.RouteList(AddressFamily.InterNetwork);
        for (var i = 0; i < Pods; i++)
        {
            var veth = _node.Netlink.LinkByName(CniNode.HostVethName($"rconc-{i}"));
            Assert.NotNull(veth);
            var ip = IPAddress.Parse(ips[i]);
            Assert.Contains(routes, r => r.Destination.Equals(new IPNetwork(ip, 32)) && r.OutputIndex == veth.Index);
            var eth0 = pods[i].Netlink.LinkByName("eth0")!;
            Assert.Contains(pods[i].Netlink.AddrList(eth0.Index), a => a.Ip.Equals(ip) && a.PrefixLength == 32);
        }

        var dels = ConcurrencyTests.InParallel(Pods, i => _node.Exec("DEL", conf, $"rconc-{i}", pods[i]));
        Assert.All(dels, r => Assert.True(r.Ok, r.ToString()));
        Assert.Empty(_node.IpamFiles());
        Assert.DoesNotContain(_node.Netlink.LinkList(), l => l.Kind == "veth" && l.Name.StartsWith("veth", StringComparison.Ordinal));
        Assert.DoesNotContain(_node.Netlink.RouteList(AddressFamily.InterNetwork), r => r.Destination.PrefixLength == 32 && r.Scope == RouteScope.Link);
    }
}
