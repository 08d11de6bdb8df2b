using System.Text.Json.Nodes;

namespace Loom.Cni.Tests;

/// <summary>The agent's subnet file found torn or corrupt: ADD fails naming it, DEL still frees the pod's address.</summary>
public sealed class SubnetFileTests : IDisposable
{
    private readonly CniNode _node = new("10.244.8.0/24");

    public void Dispose() => _node.Dispose();

    private string File => Path.Combine(_node.DataDir, "subnet.env");

    private JsonObject Conf() => _node.Conf(edit: c => c["ipam"] = new JsonObject
    {
        ["type"] = "loom", ["subnetFile"] = File, ["dataDir"] = _node.DataDir,
    });

    [Fact]
    public void Add_with_a_torn_subnet_file_fails_naming_it()
    {
        System.IO.File.WriteAllText(File, "LOOM_NETWORK=10.244.0.0/16\nLOOM_SUBNET=10.24");
        var run = _node.Exec("ADD", Conf(), "s1", _node.NewPod());
        CniAssert.Error(run, 7, File, "LOOM_SUBNET");
        Assert.Empty(_node.IpamFiles());
    }

    [Fact]
    public void Del_with_a_corrupt_subnet_file_still_frees_the_address()
    {
        System.IO.File.WriteAllText(File, "LOOM_NETWORK=10.244.0.0/16\nLOOM_SUBNET=10.244.8.1/24\nLOOM_MTU=1450\n");
        var pod = _node.NewPod();
        _node.Add(Conf(), "s2", pod);
        Assert.Single(_node.IpamFiles());

        System.IO.File.WriteAllBytes(File, new byte[64]); // a power cut before the data reached the disk
        _node.Del(Conf(), "s2", pod);
        Assert.Empty(_node.IpamFiles());
    }
}
