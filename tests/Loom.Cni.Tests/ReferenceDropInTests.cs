using System.Text.Json;
using Loom.Testing;

namespace Loom.Cni.Tests;

/// <summary>
/// loom-cni as a drop-in for the reference bridge + host-local pair: the same config with only "type" changed,
/// IPAM delegated to Debian's /usr/lib/cni/host-local (which speaks CNI up to 1.0.0).
/// </summary>
public sealed class ReferenceDropInTests : IDisposable
{
    private readonly CniNode _loom = new();
    private readonly CniNode _reference = new();

    public void Dispose()
    {
        _loom.Dispose();
        _reference.Dispose();
    }

    private static string Conf(string type, string dataDir) => $$"""
        {
          "cniVersion": "1.0.0",
          "name": "dropin",
          "type": "{{type}}",
          "bridge": "cni0",
          "isGateway": true,
          "isDefaultGateway": true,
          "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": "10.244.9.0/24"}]],
            "dataDir": "{{dataDir}}"
          }
        }
        """;

    [Fact]
    public void Same_config_as_reference_bridge_works_with_host_local_and_del_frees_the_address()
    {
        var refPod = _reference.NewPod();
        var refAdd = CniRunner.Exec(_reference.Ns.Handle, Path.Combine(CniRunner.ReferenceDir, "bridge"), "ADD", Conf("bridge", _reference.DataDir), "d1", CniNode.PathOf(refPod));
        Assert.True(refAdd.Ok, refAdd.ToString());

        var pod = _loom.NewPod();
        var conf = Conf("loom-cni", _loom.DataDir);
        var add = _loom.Exec("ADD", conf, "d1", pod);
        Assert.True(add.Ok, add.ToString());

        var expected = AddResultShapeTests.Parse(refAdd.Stdout);
        var actual = AddResultShapeTests.Parse(add.Stdout);
        Assert.Equal("1.0.0", actual.GetProperty("cniVersion").GetString());
        // Go prints "dns": {} even in 1.0.0 (omitempty does not omit structs); loom-cni leaves an empty one out. Both are valid.
        Assert.Equal(Keys(expected).Replace("dns,", "", StringComparison.Ordinal), Keys(actual));
        Assert.True(JsonElement.DeepEquals(expected.GetProperty("ips"), actual.GetProperty("ips")), $"{expected}\n{actual}");
        Assert.True(JsonElement.DeepEquals(expected.GetProperty("routes"), actual.GetProperty("routes")), $"{expected}\n{actual}");
        var ri = expected.GetProperty("interfaces");
        var li = actual.GetProperty("interfaces");
        Assert.Equal(ri.GetArrayLength(), li.GetArrayLength());
        Assert.Equal(ri[0].GetProperty("name").GetString(), li[0].GetProperty("name").GetString());
        Assert.Equal("eth0", li[2].GetProperty("name").GetString());
        Assert.Equal(CniNode.PathOf(pod), li[2].GetProperty("sandbox").GetString());

        // host-local (not the built-in allocator) holds the address, in its own layout.
        var hostLocalDir = Path.Combine(_loom.DataDir, "dropin");
        Assert.Equal(["10.244.9.2"], _loom.IpamFiles(hostLocalDir));
        Assert.Equal("d1\r\neth0", File.ReadAllText(Path.Combine(hostLocalDir, "10.244.9.2")));
        Assert.False(Directory.Exists(_loom.NetworkDir));
        Assert.Contains(pod.Netlink.AddrList(pod.Netlink.LinkByName("eth0")!.Index), a => a.Ip.ToString() == "10.244.9.2");

        // CHECK goes through host-local as well.
        var check = _loom.Exec("CHECK", WithPrev(conf, add.Stdout), "d1", pod);
        Assert.True(check.Ok, check.ToString());

        var del = _loom.Exec("DEL", conf, "d1", pod);
        Assert.True(del.Ok, del.ToString());
        Assert.Empty(_loom.IpamFiles(hostLocalDir));
        Assert.Null(pod.Netlink.LinkByName("eth0"));
        Assert.Empty(_loom.BridgePorts());

        var refDel = CniRunner.Exec(_reference.Ns.Handle, Path.Combine(CniRunner.ReferenceDir, "bridge"), "DEL", Conf("bridge", _reference.DataDir), "d1", CniNode.PathOf(refPod));
        Assert.True(refDel.Ok, refDel.ToString());
    }

    [Fact]
    public void Host_local_errors_come_back_with_their_code()
    {
        var pod = _loom.NewPod();
        var conf = Conf("loom-cni", _loom.DataDir);
        Assert.True(_loom.Exec("ADD", conf, "d1", pod, cniArgs: "IP=10.244.9.7").Ok);
        var before = _loom.State(pod);
        var other = _loom.NewPod();
        var run = _loom.Exec("ADD", conf, "d2", other, cniArgs: "IP=10.244.9.7");
        // host-local reports "requested IP address 10.244.9.7 is not available" without a typed code: 999.
        var err = CniAssert.Error(run, run.Stdout.Contains("\"code\": 11", StringComparison.Ordinal) ? 11u : 999u, "10.244.9.7");
        Assert.NotNull(err.GetProperty("msg").GetString());
        Assert.Equal(before, _loom.State(pod));
        Assert.DoesNotContain(other.Netlink.LinkList(), l => l.Name != "lo");
    }

    internal static string WithPrev(string conf, string prevResult)
    {
        var o = System.Text.Json.Nodes.JsonNode.Parse(conf)!.AsObject();
        o["prevResult"] = System.Text.Json.Nodes.JsonNode.Parse(prevResult);
        return o.ToJsonString();
    }

    private static string Keys(JsonElement e) => string.Join(',', e.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
}
