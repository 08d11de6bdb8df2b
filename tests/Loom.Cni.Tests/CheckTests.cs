using System.Net;
using System.Text.Json.Nodes;

namespace Loom.Cni.Tests;

/// <summary>CHECK compares the attachment with prevResult; failures are non-zero with a message naming what is wrong.</summary>
public sealed class CheckTests : IDisposable
{
    private readonly CniNode _node = new();

    public void Dispose() => _node.Dispose();

    private (JsonObject Check, Loom.Testing.TestNetns Pod) Added(string version = "1.1.0", string id = "c1")
    {
        var pod = _node.NewPod();
        var conf = _node.Conf(version, c => c["isDefaultGateway"] = true);
        var add = _node.Exec("ADD", conf, id, pod);
        Assert.True(add.Ok, add.ToString());
        conf["prevResult"] = JsonNode.Parse(add.Stdout);
        return (conf, pod);
    }

    [Theory]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public void Check_passes_with_the_prevResult_of_add(string version)
    {
        var (conf, pod) = Added(version);
        var run = _node.Exec("CHECK", conf, "c1", pod);
        Assert.True(run.Ok, run.ToString());
        Assert.Equal("", run.Stdout);
    }

    [Fact]
    public void Check_fails_when_the_address_was_removed()
    {
        var (conf, pod) = Added();
        var eth0 = pod.Netlink.LinkByName("eth0")!;
        pod.Netlink.AddrDel(eth0.Index, IPAddress.Parse("10.244.7.2"), 24);
        CniAssert.Error(_node.Exec("CHECK", conf, "c1", pod), 100, "10.244.7.2/24", "eth0");
    }

    [Fact]
    public void Check_fails_when_the_interface_is_gone()
    {
        var (conf, pod) = Added();
        pod.Netlink.LinkDel(pod.Netlink.LinkByName("eth0")!.Index);
        CniAssert.Error(_node.Exec("CHECK", conf, "c1", pod), 100, "eth0", "missing");
    }

    [Fact]
    public void Check_fails_when_the_interface_is_down()
    {
        var (conf, pod) = Added();
        pod.Netlink.LinkSetDown(pod.Netlink.LinkByName("eth0")!.Index);
        CniAssert.Error(_node.Exec("CHECK", conf, "c1", pod), 100, "eth0", "down");
    }

    [Fact]
    public void Check_fails_when_the_ipam_record_is_gone()
    {
        var (conf, pod) = Added();
        File.Delete(Path.Combine(_node.NetworkDir, "10.244.7.2"));
        CniAssert.Error(_node.Exec("CHECK", conf, "c1", pod), 100, "ipam");
    }

    [Fact]
    public void Check_fails_when_the_host_veth_left_the_bridge()
    {
        var (conf, pod) = Added();
        _node.Netlink.LinkSetNoMaster(_node.Netlink.LinkByName(CniNode.HostVethName("c1"))!.Index);
        CniAssert.Error(_node.Exec("CHECK", conf, "c1", pod), 100, CniNode.HostVethName("c1"), "cni0");
    }

    [Fact]
    public void Check_without_prevResult_is_code_7()
    {
        var (conf, pod) = Added();
        conf.Remove("prevResult");
        CniAssert.Error(_node.Exec("CHECK", conf, "c1", pod), 7, "prevResult");
    }

    [Fact]
    public void Check_with_cniVersion_0_3_1_is_code_1()
    {
        var (conf, pod) = Added("0.3.1");
        CniAssert.Error(_node.Exec("CHECK", conf, "c1", pod), 1, "CHECK", "0.4.0");
    }
}
