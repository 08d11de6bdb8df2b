using Loom.Testing;

namespace Loom.Cni.Tests;

/// <summary>DEL is idempotent: whatever is already gone, it succeeds and frees the address.</summary>
public sealed class DelTests : IDisposable
{
    private readonly CniNode _node = new();

    public void Dispose() => _node.Dispose();

    [Fact]
    public void Repeated_del_succeeds()
    {
        var pod = _node.NewPod();
        var conf = _node.Conf(edit: c => c["ipMasq"] = true);
        _node.Add(conf, "d1", pod);
        _node.Del(conf, "d1", pod);
        _node.Del(conf, "d1", pod);
        _node.Del(conf, "d1", pod);
        Assert.Empty(_node.IpamFiles());
        Assert.Empty(_node.BridgePorts());
        Assert.Null(pod.Netlink.LinkByName("eth0"));
        Assert.DoesNotContain("CNI-", _node.NatRules(), StringComparison.Ordinal);
    }

    [Fact]
    public void Del_of_a_container_never_added_succeeds()
    {
        _node.Del(_node.Conf(), "never", _node.NewPod());
        _node.Del(_node.Conf(), "never", null);
    }

    [Fact]
    public void Del_after_the_pod_netns_was_deleted()
    {
        var conf = _node.Conf();
        string path;
        using (var pod = new TestNetns("gone"))
        {
            _node.Add(conf, "d2", pod);
            path = CniNode.PathOf(pod);
        }

        Assert.False(File.Exists(path));
        var run = _node.Exec("DEL", conf, "d2", netns: path);
        Assert.True(run.Ok, run.ToString());
        Assert.Empty(_node.IpamFiles());
        Assert.DoesNotContain(_node.Netlink.LinkList(), l => l.Name == CniNode.HostVethName("d2"));
    }

    [Fact]
    public void Del_after_the_link_was_removed_by_hand()
    {
        var pod = _node.NewPod();
        var conf = _node.Conf();
        _node.Add(conf, "d3", pod);
        pod.Netlink.LinkDel(pod.Netlink.LinkByName("eth0")!.Index);
        _node.Del(conf, "d3", pod);
        Assert.Empty(_node.IpamFiles());
        Assert.Empty(_node.BridgePorts());
    }

    [Fact]
    public void Del_after_only_the_host_side_was_removed_by_hand()
    {
        var pod = _node.NewPod();
        var conf = _node.Conf();
        _node.Add(conf, "d4", pod);
        _node.Netlink.LinkDel(_node.Netlink.LinkByName(CniNode.HostVethName("d4"))!.Index);
        _node.Del(conf, "d4", pod);
        Assert.Empty(_node.IpamFiles());
    }

    [Fact]
    public void Del_without_cni_netns_removes_the_host_veth_and_frees_the_address()
    {
        var pod = _node.NewPod();
        var conf = _node.Conf();
        _node.Add(conf, "d5", pod);
        var run = _node.Exec("DEL", conf, "d5", pod: null);
        Assert.True(run.Ok, run.ToString());
        Assert.Empty(_node.IpamFiles());
        Assert.Empty(_node.BridgePorts());
        Assert.Null(pod.Netlink.LinkByName("eth0")); // the peer goes with the host side
    }

    [Fact]
    public void Del_leaves_other_pods_alone()
    {
        var conf = _node.Conf();
        var a = _node.NewPod();
        var b = _node.NewPod();
        _node.Add(conf, "da", a);
        _node.Add(conf, "db", b);
        _node.Del(conf, "da", a);
        Assert.Equal(["10.244.7.3"], _node.IpamFiles());
        Assert.Equal([CniNode.HostVethName("db")], _node.BridgePorts().Select(l => l.Name));
        Assert.NotNull(b.Netlink.LinkByName("eth0"));
    }
}
