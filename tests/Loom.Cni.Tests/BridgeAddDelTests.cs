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
}
