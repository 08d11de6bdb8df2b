using System.Text.Json.Nodes;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Cni.Tests;

/// <summary>
/// Every CNI error code the plugin can produce, from the real binary: the code, a message naming the offending
/// key or variable, and, for ADD, nothing half-done (no link in node or pod, no IPAM record, no nat chain).
/// </summary>
public sealed class ErrorCodeTests : IDisposable
{
    private readonly CniNode _node = new();
    private readonly TestNetns _pod;

    public ErrorCodeTests()
    {
        _pod = _node.NewPod();
    }

    public void Dispose() => _node.Dispose();

    /// <summary>Runs a failing ADD and checks that it changed nothing.</summary>
    private System.Text.Json.JsonElement FailingAdd(uint code, JsonObject conf, string? containerId = "e1", string? cniArgs = null, string? ifName = "eth0", string? netns = null, params string[] mentions) =>
        FailingAdd(code, conf.ToJsonString(), containerId, cniArgs, ifName, netns, mentions);

    private System.Text.Json.JsonElement FailingAdd(uint code, string conf, string? containerId, string? cniArgs, string? ifName, string? netns, params string[] mentions)
    {
        var before = _node.State(_pod);
        var run = _node.Exec("ADD", conf, containerId, netns is null ? _pod : null, ifName, cniArgs, netns);
        var error = CniAssert.Error(run, code, mentions);
        Assert.Equal(before, _node.State(_pod));
        return error;
    }

    [Theory]
    [InlineData("9.9.9")]
    [InlineData("0.2.0")]
    public void Code_1_unsupported_cni_version(string version)
    {
        var e = FailingAdd(1, _node.Conf(version), mentions: [version]);
        Assert.Equal(version, e.GetProperty("cniVersion").GetString()); // the error speaks the config's version
    }

    [Fact]
    public void Code_2_unsupported_field_vlan()
    {
        FailingAdd(2, _node.Conf(edit: c => c["vlan"] = 100), mentions: ["vlan", "100"]);
    }

    [Fact]
    public void Code_2_unsupported_field_macspoofchk()
    {
        FailingAdd(2, _node.Conf(edit: c => c["macspoofchk"] = true), mentions: ["macspoofchk"]);
    }

    [Fact]
    public void Code_3_netns_that_does_not_exist()
    {
        FailingAdd(3, _node.Conf(), netns: "/var/run/netns/loom-test-no-such-ns", mentions: ["/var/run/netns/loom-test-no-such-ns"]);
    }

    [Fact]
    public void Code_4_missing_container_id()
    {
        FailingAdd(4, _node.Conf(), containerId: null, mentions: ["CNI_CONTAINERID"]);
    }

    [Fact]
    public void Code_4_missing_netns()
    {
        var run = _node.Exec("ADD", _node.Conf(), "e1", pod: null);
        CniAssert.Error(run, 4, "CNI_NETNS");
    }

    [Theory]
    [InlineData("bad/name")]
    [InlineData("a-name-much-too-long")]
    [InlineData("eth 0")]
    public void Code_4_bad_ifname(string ifName)
    {
        FailingAdd(4, _node.Conf(), ifName: ifName, mentions: ["CNI_IFNAME"]);
    }

    [Fact]
    public void Code_4_invalid_container_id()
    {
        FailingAdd(4, _node.Conf(), containerId: "-bad id", mentions: ["CNI_CONTAINERID"]);
    }

    [Fact]
    public void Code_4_unknown_cni_args_key_without_ignore_unknown()
    {
        FailingAdd(4, _node.Conf(), cniArgs: "K8S_POD_NAME=web;FOO=bar", mentions: ["CNI_ARGS", "FOO"]);
    }

    [Fact]
    public void Code_4_malformed_cni_args_and_bad_ip()
    {
        FailingAdd(4, _node.Conf(), cniArgs: "IP=not-an-ip", mentions: ["CNI_ARGS", "not-an-ip"]);
        FailingAdd(4, _node.Conf(), cniArgs: "novalue", mentions: ["CNI_ARGS", "novalue"]);
    }

    [Fact]
    public void Code_4_unknown_command()
    {
        CniAssert.Error(_node.Exec("FROB", _node.Conf(), "e1", _pod), 4, "CNI_COMMAND", "FROB");
    }

    [Fact]
    public void Code_5_ipam_data_dir_under_a_regular_file()
    {
        var file = Path.Combine(_node.DataDir, "plain-file");
        File.WriteAllText(file, "not a directory");
        FailingAdd(5, _node.Conf(edit: c => c["ipam"]!["dataDir"] = Path.Combine(file, "sub")), mentions: [file]);
    }

    [Theory]
    [InlineData("{\"cniVersion\": \"1.1.0\", \"name\": ")]
    [InlineData("not json at all")]
    [InlineData("[1, 2]")]
    public void Code_6_malformed_json(string stdin)
    {
        FailingAdd(6, stdin, "e1", null, "eth0", null, "network config");
    }

    [Fact]
    public void Code_7_missing_name()
    {
        FailingAdd(7, _node.Conf(edit: c => c.Remove("name")), mentions: ["name"]);
    }

    [Fact]
    public void Code_7_missing_ipam()
    {
        FailingAdd(7, _node.Conf(edit: c => c.Remove("ipam")), mentions: ["ipam"]);
    }

    [Theory]
    [InlineData("10.244.7.0/33", "subnet")]
    [InlineData("10.244.7.5/24", "subnet")]
    [InlineData("banana", "subnet")]
    public void Code_7_bad_ipam_subnet(string subnet, string key)
    {
        FailingAdd(7, _node.Conf(edit: c => c["ipam"]!["ranges"]![0]![0]!["subnet"] = subnet), mentions: [key, subnet]);
    }

    [Fact]
    public void Code_7_range_start_outside_the_subnet()
    {
        FailingAdd(7, _node.Conf(edit: c => c["ipam"]!["ranges"]![0]![0]!["rangeStart"] = "10.9.9.9"), mentions: ["rangeStart", "10.9.9.9"]);
    }

    [Fact]
    public void Code_7_bad_types_name_the_key()
    {
        FailingAdd(7, _node.Conf(edit: c => c["mtu"] = "big"), mentions: ["mtu"]);
        FailingAdd(7, _node.Conf(edit: c => c["isGateway"] = "yes"), mentions: ["isGateway"]);
        FailingAdd(7, _node.Conf(edit: c => c["bridge"] = "way-too-long-bridge-name"), mentions: ["bridge"]);
    }

    [Fact]
    public void Code_7_bridge_name_exists_but_is_not_a_bridge()
    {
        _node.Netlink.LinkAdd(new VethSpec("cni0", "cni0peer"));
        FailingAdd(7, _node.Conf(), mentions: ["bridge", "cni0", "veth"]);
        Assert.Equal("veth", _node.Netlink.LinkByName("cni0")!.Kind);
    }

    [Fact]
    public void Code_11_range_exhausted()
    {
        var conf = _node.Conf(edit: c =>
        {
            c["ipam"]!["ranges"]![0]![0]!["rangeStart"] = "10.244.7.10";
            c["ipam"]!["ranges"]![0]![0]!["rangeEnd"] = "10.244.7.10";
        });
        var other = _node.NewPod();
        _node.Add(conf, "holder", other);
        FailingAdd(11, conf, mentions: ["no free IP address", CniNode.Network]);
    }

    [Fact]
    public void Code_11_requested_ip_already_taken()
    {
        var other = _node.NewPod();
        _node.Add(_node.Conf(), "holder", other, cniArgs: "IP=10.244.7.20");
        FailingAdd(11, _node.Conf(), cniArgs: "IP=10.244.7.20", mentions: ["10.244.7.20", "holder"]);
        FailingAdd(11, _node.Conf(edit: c => c["runtimeConfig"] = new JsonObject { ["ips"] = new JsonArray("10.244.7.20/24") }), mentions: ["10.244.7.20"]);
    }

    [Fact]
    public void Code_11_requested_ip_outside_the_range()
    {
        FailingAdd(11, _node.Conf(), cniArgs: "IP=10.99.0.1", mentions: ["10.99.0.1"]);
    }

    [Fact]
    public void Interface_already_in_the_pod_fails_and_leaves_it_alone()
    {
        _pod.Netlink.LinkAdd(new VethSpec("eth0", "other0"));
        FailingAdd(999, _node.Conf(), mentions: ["eth0", "already exists"]);
    }

    [Fact]
    public void Failing_add_with_ipMasq_leaves_no_chain()
    {
        var other = _node.NewPod();
        var conf = _node.Conf(edit: c => c["ipMasq"] = true);
        _node.Add(conf, "holder", other, cniArgs: "IP=10.244.7.20");
        FailingAdd(11, conf, cniArgs: "IP=10.244.7.20", mentions: ["10.244.7.20"]);
    }

    [Fact]
    public void Failing_del_and_gc_report_codes_too()
    {
        CniAssert.Error(_node.Exec("DEL", "{", "e1", _pod), 6);
        CniAssert.Error(_node.Exec("DEL", _node.Conf("9.9.9"), "e1", _pod), 1, "9.9.9");
        CniAssert.Error(_node.Exec("DEL", _node.Conf(), containerId: null, pod: _pod), 4, "CNI_CONTAINERID");
        var gc = _node.Conf();
        gc["cni.dev/valid-attachments"] = new JsonArray(new JsonObject { ["ifname"] = "eth0" });
        CniAssert.Error(_node.Exec("GC", gc, ifName: null), 7, "containerID");
    }
}
