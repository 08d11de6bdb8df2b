using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Loom.Linux;

namespace Loom.Cni.Tests;

/// <summary>What ADD does to the pod and the node, read back over netlink (and `ip -d -j` for bridge-port flags).</summary>
public sealed class AddPodConfigTests : IDisposable
{
    private readonly CniNode _node = new();

    public void Dispose() => _node.Dispose();

    [Fact]
    public void Pod_gets_its_address_routes_and_default_route_and_the_bridge_the_gateway()
    {
        var pod = _node.NewPod();
        var conf = _node.Conf(edit: c =>
        {
            c["isDefaultGateway"] = true;
            c["ipam"]!["routes"] = new JsonArray(new JsonObject { ["dst"] = "10.96.0.0/12" });
        });
        _node.Add(conf, "p1", pod);

        var eth0 = pod.Netlink.LinkByName("eth0");
        Assert.NotNull(eth0);
        Assert.True(eth0.IsUp);
        var addr = Assert.Single(pod.Netlink.AddrList(eth0.Index, AddressFamily.InterNetwork));
        Assert.Equal(IPAddress.Parse("10.244.7.2"), addr.Ip);
        Assert.Equal(24, addr.PrefixLength);

        var routes = pod.Netlink.RouteList();
        var gw = IPAddress.Parse("10.244.7.1");
        Assert.Contains(routes, r => r.Destination.PrefixLength == 0 && r.Destination.BaseAddress.Equals(IPAddress.Any) && gw.Equals(r.Gateway) && r.OutputIndex == eth0.Index);
        Assert.Contains(routes, r => r.Destination.Equals(IPNetwork.Parse("10.96.0.0/12")) && gw.Equals(r.Gateway) && r.OutputIndex == eth0.Index);

        var bridge = _node.Bridge();
        Assert.Equal("bridge", bridge.Kind);
        Assert.True(bridge.IsUp);
        Assert.Contains(_node.Netlink.AddrList(bridge.Index), a => a.Ip.Equals(gw) && a.PrefixLength == 24);
        var hostVeth = _node.Netlink.LinkByName(CniNode.HostVethName("p1"));
        Assert.NotNull(hostVeth);
        Assert.Equal(bridge.Index, hostVeth.MasterIndex);
        Assert.True(hostVeth.IsUp);

        // A gateway means forwarding, in the node namespace only.
        Assert.Equal("1", _node.Ns.Run(() => Sysctl.Get("net.ipv4.ip_forward")));
        Assert.Equal("0", pod.Run(() => Sysctl.Get("net.ipv4.ip_forward")));
    }

    [Fact]
    public void Without_isDefaultGateway_there_is_no_default_route()
    {
        var pod = _node.NewPod();
        var r = _node.Add(_node.Conf(), "p1", pod);
        Assert.False(r.TryGetProperty("routes", out _));
        Assert.DoesNotContain(pod.Netlink.RouteList(), x => x.Destination.PrefixLength == 0);
    }

    [Fact]
    public void Mtu_is_honoured_on_the_bridge_both_veth_ends_and_in_the_result()
    {
        var pod = _node.NewPod();
        var r = _node.Add(_node.Conf(edit: c => c["mtu"] = 1400), "p1", pod);
        Assert.Equal(1400, pod.Netlink.LinkByName("eth0")!.Mtu);
        Assert.Equal(1400, _node.Netlink.LinkByName(CniNode.HostVethName("p1"))!.Mtu);
        Assert.Equal(1400, _node.Bridge().Mtu);
        Assert.All(r.GetProperty("interfaces").EnumerateArray(), i => Assert.Equal(1400, i.GetProperty("mtu").GetInt32()));
    }

    [Fact]
    public void HairpinMode_sets_the_bridge_port_hairpin_flag_and_is_off_by_default()
    {
        var on = _node.NewPod();
        var off = _node.NewPod();
        _node.Add(_node.Conf(edit: c => c["hairpinMode"] = true), "hp-on", on);
        _node.Add(_node.Conf(), "hp-off", off);

        Assert.True(Hairpin(CniNode.HostVethName("hp-on")));
        Assert.False(Hairpin(CniNode.HostVethName("hp-off")));

        bool Hairpin(string veth) =>
            Tool.LinkDetails(_node.Ns, veth).GetProperty("linkinfo").GetProperty("info_slave_data").GetProperty("hairpin").GetBoolean();
    }

    [Fact]
    public void PromiscMode_puts_the_bridge_in_promiscuous_mode()
    {
        _node.Add(_node.Conf(), "p0", _node.NewPod());
        Assert.Equal(0, Tool.LinkDetails(_node.Ns, "cni0").GetProperty("promiscuity").GetInt32());

        _node.Add(_node.Conf(edit: c => c["promiscMode"] = true), "p1", _node.NewPod());
        var details = Tool.LinkDetails(_node.Ns, "cni0");
        Assert.True(details.GetProperty("promiscuity").GetInt32() > 0, details.ToString());
        Assert.Contains("PROMISC", details.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
    }

    [Fact]
    public void Requested_ip_via_cni_args_with_ignore_unknown()
    {
        var pod = _node.NewPod();
        var r = _node.Add(_node.Conf(), "p1", pod, cniArgs: "IgnoreUnknown=1;K8S_POD_NAME=web;FOO=bar;IP=10.244.7.42");
        Assert.Equal("10.244.7.42/24", r.GetProperty("ips")[0].GetProperty("address").GetString());
        Assert.Contains(pod.Netlink.AddrList(pod.Netlink.LinkByName("eth0")!.Index), a => a.Ip.Equals(IPAddress.Parse("10.244.7.42")));
        Assert.Equal(["10.244.7.42"], _node.IpamFiles());
    }

    [Fact]
    public void Requested_ip_via_runtimeConfig_ips()
    {
        var pod = _node.NewPod();
        var r = _node.Add(_node.Conf(edit: c => c["runtimeConfig"] = new JsonObject { ["ips"] = new JsonArray("10.244.7.43/24") }), "p1", pod);
        Assert.Equal("10.244.7.43/24", r.GetProperty("ips")[0].GetProperty("address").GetString());
        Assert.Contains(pod.Netlink.AddrList(pod.Netlink.LinkByName("eth0")!.Index), a => a.Ip.Equals(IPAddress.Parse("10.244.7.43")));
    }

    [Fact]
    public void Requested_mac_via_cni_args()
    {
        var pod = _node.NewPod();
        var r = _node.Add(_node.Conf(), "p1", pod, cniArgs: "IgnoreUnknown=1;MAC=0a:58:0a:f4:07:99");
        Assert.Equal("0a:58:0a:f4:07:99", r.GetProperty("interfaces")[2].GetProperty("mac").GetString());
        Assert.Equal("0A580AF40799", Hex(pod.Netlink.LinkByName("eth0")!.HardwareAddr!.GetAddressBytes()));
    }

    [Fact]
    public void Requested_mac_via_runtimeConfig_mac()
    {
        var pod = _node.NewPod();
        var r = _node.Add(_node.Conf(edit: c => c["runtimeConfig"] = new JsonObject { ["mac"] = "0a:58:0a:f4:07:9a" }), "p1", pod);
        Assert.Equal("0a:58:0a:f4:07:9a", r.GetProperty("interfaces")[2].GetProperty("mac").GetString());
        Assert.Equal("0A580AF4079A", Hex(pod.Netlink.LinkByName("eth0")!.HardwareAddr!.GetAddressBytes()));
    }

    [Fact]
    public void Each_pod_gets_the_next_address_and_a_port_on_the_same_bridge()
    {
        var conf = _node.Conf();
        var a = _node.Add(conf, "pa", _node.NewPod());
        var b = _node.Add(conf, "pb", _node.NewPod());
        Assert.Equal("10.244.7.2", CniNode.IpOf(a));
        Assert.Equal("10.244.7.3", CniNode.IpOf(b));
        Assert.Equal(
            new[] { CniNode.HostVethName("pa"), CniNode.HostVethName("pb") }.Order(StringComparer.Ordinal),
            _node.BridgePorts().Select(l => l.Name).Order(StringComparer.Ordinal));
        Assert.Equal(["10.244.7.2", "10.244.7.3"], _node.IpamFiles());
    }

    [Fact]
    public void Host_veth_name_is_derived_from_container_id_and_ifname_and_survives_a_re_add()
    {
        var conf = _node.Conf();
        var pod = _node.NewPod();
        var first = _node.Add(conf, "same-id", pod);
        var name = first.GetProperty("interfaces")[1].GetProperty("name").GetString();
        Assert.Equal(CniNode.HostVethName("same-id"), name);
        Assert.Matches("^veth[0-9a-f]{11}$", name);
        _node.Del(conf, "same-id", pod);
        var again = _node.Add(conf, "same-id", pod);
        Assert.Equal(name, again.GetProperty("interfaces")[1].GetProperty("name").GetString());

        // A second interface of the same container gets its own, different name.
        var net1 = _node.Add(conf, "same-id", pod, ifName: "net1");
        Assert.Equal(CniNode.HostVethName("same-id", "net1"), net1.GetProperty("interfaces")[1].GetProperty("name").GetString());
        Assert.NotEqual(name, CniNode.HostVethName("same-id", "net1"));
        Assert.NotEqual(CniNode.IpOf(again), CniNode.IpOf(net1));
        Assert.Equal(2, _node.IpamFiles().Count);
    }

    private static string Hex(byte[] b) => Convert.ToHexString(b);
}
