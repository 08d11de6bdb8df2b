using System.Text.Json;
using Loom.Testing;

namespace Loom.Cni.Tests;

public sealed class BridgeAddDelTests : IDisposable
{
    private readonly TestNetns _node = new("node");
    private readonly TestNetns _pod = new("pod");
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-cni-test").FullName;

    public void Dispose()
    {
        _pod.Dispose();
        _node.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string Config(string version = "1.1.0") => $$$"""
        {"cniVersion": "{{{version}}}", "name": "t", "type": "loom-cni", "bridge": "cni0", "isGateway": true,
         "ipam": {"type": "loom", "ranges": [[{"subnet": "10.244.7.0/24"}]], "dataDir": "{{{_dir}}}"}}
        """;

    [Fact]
    public void Add_wires_the_pod_into_the_node_bridge_and_del_removes_it()
    {
        var add = CniRunner.Exec(_node.Handle, CniRunner.LoomCni, "ADD", Config(), "c1", $"/var/run/netns/{_pod.Name}");
        Assert.True(add.Ok, add.ToString());
        using var result = JsonDocument.Parse(add.Stdout);
        Assert.Equal("10.244.7.2/24", result.RootElement.GetProperty("ips")[0].GetProperty("address").GetString());

        var bridge = _node.Netlink.LinkByName("cni0");
        Assert.NotNull(bridge);
        Assert.Contains(_node.Netlink.AddrList(bridge.Index), a => a.Ip.ToString() == "10.244.7.1");
        var eth0 = _pod.Netlink.LinkByName("eth0");
        Assert.NotNull(eth0);
        Assert.Contains(_pod.Netlink.AddrList(eth0.Index), a => a.Ip.ToString() == "10.244.7.2" && a.PrefixLength == 24);

        var del = CniRunner.Exec(_node.Handle, CniRunner.LoomCni, "DEL", Config(), "c1", $"/var/run/netns/{_pod.Name}");
        Assert.True(del.Ok, del.ToString());
        Assert.Null(_pod.Netlink.LinkByName("eth0"));
        Assert.DoesNotContain(_node.Netlink.LinkList(), l => l.MasterIndex == bridge.Index);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "t"), "10.*"));
    }

    [Fact]
    public void The_bridge_keeps_its_mac_when_the_pod_whose_veth_had_the_lowest_one_goes()
    {
        // Otherwise a Linux bridge follows its lowest port MAC, and every other pod's ARP entry for the gateway goes stale.
        using var second = new TestNetns("pod2");
        var add = CniRunner.Exec(_node.Handle, CniRunner.LoomCni, "ADD", Config(), "c1", $"/var/run/netns/{_pod.Name}");
        Assert.True(add.Ok, add.ToString());
        var bridge = _node.Netlink.LinkByName("cni0")!;
        var add2 = CniRunner.Exec(_node.Handle, CniRunner.LoomCni, "ADD", Config(), "c2", $"/var/run/netns/{second.Name}");
        Assert.True(add2.Ok, add2.ToString());
        foreach (var (id, pod) in new[] { ("c1", _pod.Name), ("c2", second.Name) })
        {
            var del = CniRunner.Exec(_node.Handle, CniRunner.LoomCni, "DEL", Config(), id, $"/var/run/netns/{pod}");
            Assert.True(del.Ok, del.ToString());
            Assert.Equal(bridge.HardwareAddr, _node.Netlink.LinkByName("cni0")!.HardwareAddr);
        }
    }
}
