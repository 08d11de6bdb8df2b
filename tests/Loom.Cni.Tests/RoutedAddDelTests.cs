using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Loom.Core.Cni;
using Loom.Linux;

namespace Loom.Cni.Tests;

/// <summary>Routed plumbing (<c>"plumbing": "routed"</c>): what ADD wires, what DEL and GC remove, what CHECK sees.</summary>
public sealed class RoutedAddDelTests : IDisposable
{
    private readonly CniNode _node = new();

    public RoutedAddDelTests() => _node.EnsureRouter();

    public void Dispose() => _node.Dispose();

    [Fact]
    public void Add_wires_two_pods_with_a_32_a_router_route_a_permanent_router_neighbour_and_a_host_route_each()
    {
        var conf = _node.RoutedConf();
        var a = _node.NewPod("ra");
        var b = _node.NewPod("rb");
        var resultA = _node.Add(conf, "ra", a);
        _node.Add(conf, "rb", b);

        Assert.Null(_node.Netlink.LinkByName("cni0"));
        foreach (var (id, pod, ip) in new[] { ("ra", a, "10.244.7.2"), ("rb", b, "10.244.7.3") })
        {
            var eth0 = pod.Netlink.LinkByName("eth0")!;
            Assert.True(eth0.IsUp);
            var addr = Assert.Single(pod.Netlink.AddrList(eth0.Index, AddressFamily.InterNetwork));
            Assert.Equal((IPAddress.Parse(ip), 32), (addr.Ip, addr.PrefixLength));

            var routes = pod.Netlink.RouteList(AddressFamily.InterNetwork);
            Assert.Contains(routes, r => r.Destination.Equals(IPNetwork.Parse("10.244.7.1/32")) && r.Scope == RouteScope.Link && r.OutputIndex == eth0.Index);
            Assert.Contains(routes, r => r.Destination.PrefixLength == 0 && _node.Router.Equals(r.Gateway) && r.OutputIndex == eth0.Index);

            var hostVeth = _node.Netlink.LinkByName(CniNode.HostVethName(id))!;
            Assert.True(hostVeth.IsUp);
            Assert.Equal(0, hostVeth.MasterIndex);
            Assert.Equal(CniNames.RoutedVethAlias(CniNode.Network), hostVeth.Alias); // how eBPF host routing finds the network's pods
            Assert.Empty(_node.Netlink.AddrList(hostVeth.Index, AddressFamily.InterNetwork));
            var neigh = Assert.Single(pod.Netlink.NeighList(eth0.Index), n => n.Ip.Equals(_node.Router));
            Assert.True(neigh.State.HasFlag(NeighState.Permanent));
            Assert.Equal(hostVeth.HardwareAddr, neigh.HardwareAddr);

            var hostRoute = Assert.Single(_node.Netlink.RouteList(AddressFamily.InterNetwork), r => r.Destination.Equals(IPNetwork.Parse(ip + "/32")));
            Assert.Equal((hostVeth.Index, RouteScope.Link, (IPAddress?)null), (hostRoute.OutputIndex, hostRoute.Scope, hostRoute.Gateway));
        }

        // iproute2's view of pod a, as an operator would read it next to a Cilium pod.
        var podRoutes = Tool.Run("ip", "-n", a.Name, "-4", "route", "show");
        Assert.Contains("default via 10.244.7.1 dev eth0", podRoutes, StringComparison.Ordinal);
        Assert.Contains("10.244.7.1 dev eth0 scope link", podRoutes, StringComparison.Ordinal);
        Assert.Equal("1", Tool.Run("ip", "netns", "exec", _node.Ns.Name, "sysctl", "-n", "net.ipv4.ip_forward").Trim());

        // The result: host veth + pod interface, the address as a /32 with the router as its gateway.
        Assert.Equal(2, resultA.GetProperty("interfaces").GetArrayLength());
        Assert.Equal(CniNode.HostVethName("ra"), resultA.GetProperty("interfaces")[0].GetProperty("name").GetString());
        Assert.Equal(CniNode.PathOf(a), resultA.GetProperty("interfaces")[1].GetProperty("sandbox").GetString());
        var ipA = resultA.GetProperty("ips")[0];
        Assert.Equal(("10.244.7.2/32", "10.244.7.1", 1), (ipA.GetProperty("address").GetString(), ipA.GetProperty("gateway").GetString(), ipA.GetProperty("interface").GetInt32()));
    }

    [Fact]
    public void Del_leaves_no_veth_no_host_route_no_address_and_a_second_del_succeeds()
    {
        var conf = _node.RoutedConf();
        var pod = _node.NewPod();
        var ip = CniNode.IpOf(_node.Add(conf, "rd", pod));

        _node.Del(conf, "rd", pod);
        Assert.Null(_node.Netlink.LinkByName(CniNode.HostVethName("rd")));
        Assert.Null(pod.Netlink.LinkByName("eth0"));
        Assert.DoesNotContain(_node.Netlink.RouteList(AddressFamily.InterNetwork), r => r.Destination.BaseAddress.Equals(IPAddress.Parse(ip)));
        Assert.Empty(_node.IpamFiles());
        _node.Del(conf, "rd", pod);

        // Also when the pod's namespace is already gone: the host side is found by its name.
        var gone = _node.NewPod();
        var ip2 = CniNode.IpOf(_node.Add(conf, "rg", gone));
        gone.Dispose();
        _node.Del(conf, "rg", null);
        Assert.Null(_node.Netlink.LinkByName(CniNode.HostVethName("rg")));
        Assert.DoesNotContain(_node.Netlink.RouteList(AddressFamily.InterNetwork), r => r.Destination.BaseAddress.Equals(IPAddress.Parse(ip2)));
        Assert.Empty(_node.IpamFiles());
    }

    [Fact]
    public void Check_passes_after_add_and_fails_when_the_host_route_or_the_router_neighbour_is_removed()
    {
        var pod = _node.NewPod();
        var conf = _node.RoutedConf();
        var add = _node.Add(conf, "rc", pod);
        conf["prevResult"] = JsonNode.Parse(add.GetRawText());
        var ok = _node.Exec("CHECK", conf, "rc", pod);
        Assert.True(ok.Ok, ok.ToString());

        Tool.Run("ip", "-n", _node.Ns.Name, "route", "del", "10.244.7.2/32");
        CniAssert.Error(_node.Exec("CHECK", conf, "rc", pod), 100, "host route 10.244.7.2/32", CniNode.HostVethName("rc"));

        // Put it back; then the pod loses the router's neighbour entry instead.
        Tool.Run("ip", "-n", _node.Ns.Name, "route", "add", "10.244.7.2/32", "dev", CniNode.HostVethName("rc"), "scope", "link");
        Assert.True(_node.Exec("CHECK", conf, "rc", pod).Ok);
        Tool.Run("ip", "-n", pod.Name, "neigh", "del", "10.244.7.1", "dev", "eth0");
        CniAssert.Error(_node.Exec("CHECK", conf, "rc", pod), 100, "neighbour 10.244.7.1");
    }

    [Fact]
    public void IpMasq_with_routed_exempts_the_whole_block_not_just_the_pods_32()
    {
        var conf = _node.RoutedConf(edit: c => c["ipMasq"] = true);
        var pod = _node.NewPod();
        _node.Add(conf, "rm", pod);
        var nat = _node.NatRules().Split('\n');
        Assert.Contains(nat, l => l.StartsWith("-A CNI-", StringComparison.Ordinal) && l.Contains("-d 10.244.7.0/24 ", StringComparison.Ordinal) && l.EndsWith("-j ACCEPT", StringComparison.Ordinal));
        Assert.Contains(nat, l => l.StartsWith("-A POSTROUTING -s 10.244.7.2/32 ", StringComparison.Ordinal));
        _node.Del(conf, "rm", pod);
        Assert.DoesNotContain("CNI-", _node.NatRules(), StringComparison.Ordinal);
    }

    [Fact]
    public void Add_without_the_router_ip_on_the_node_is_try_again_later_and_leaves_nothing()
    {
        RouterDevice.Delete(_node.Netlink);
        var pod = _node.NewPod();
        var before = _node.State(pod);
        CniAssert.Error(_node.Exec("ADD", _node.RoutedConf(), "rn", pod), CniErrorCodes.TryAgainLater, "router IP 10.244.7.1", "loom_host");
        Assert.Equal(before, _node.State(pod));
    }

    [Theory]
    [InlineData("bridge", "\"cni0\"")]
    [InlineData("isGateway", "true")]
    [InlineData("hairpinMode", "false")]
    public void Routed_refuses_keys_that_only_shape_a_bridge(string key, string value)
    {
        var conf = _node.RoutedConf(edit: c => c[key] = JsonNode.Parse(value));
        CniAssert.Error(_node.Exec("ADD", conf, "rk", _node.NewPod()), CniErrorCodes.InvalidNetworkConfig, $"key \"{key}\"", "routed");
    }

    [Fact]
    public void An_unknown_plumbing_is_refused_naming_the_key()
    {
        var conf = _node.Conf(edit: c => c["plumbing"] = "overlay");
        CniAssert.Error(_node.Exec("ADD", conf, "ru", _node.NewPod()), CniErrorCodes.InvalidNetworkConfig, "key \"plumbing\"", "\"overlay\"");
    }

    [Fact]
    public void Gc_removes_this_networks_stale_routed_veths_and_leaves_other_networks_alone()
    {
        var conf = _node.RoutedConf();
        var keep = _node.NewPod();
        var stale = _node.NewPod();
        _node.Add(conf, "keep", keep);
        _node.Add(conf, "stale", stale);

        // Another routed network on the same node (a second IPAM dir, another name): its veth is not ours to collect.
        var other = _node.RoutedConf(edit: c =>
        {
            c["name"] = "other";
            c["ipam"]!["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = "10.244.7.0/24", ["rangeStart"] = "10.244.7.200" }));
        });
        _node.Add(other, "foreign", _node.NewPod());

        var gc = _node.RoutedConf(edit: c => c["cni.dev/valid-attachments"] = JsonNode.Parse("""[{"containerID": "keep", "ifname": "eth0"}]"""));
        var run = _node.Exec("GC", gc, ifName: null);
        Assert.True(run.Ok, run.ToString());
        Assert.NotNull(_node.Netlink.LinkByName(CniNode.HostVethName("keep")));
        Assert.Null(_node.Netlink.LinkByName(CniNode.HostVethName("stale")));
        Assert.NotNull(_node.Netlink.LinkByName(CniNode.HostVethName("foreign")));
        Assert.DoesNotContain(_node.Netlink.RouteList(AddressFamily.InterNetwork), r => r.Destination.Equals(IPNetwork.Parse("10.244.7.3/32")));
        Assert.Equal(["10.244.7.2"], _node.IpamFiles());
    }
}
