using System.Text.Json.Nodes;

namespace Loom.Lab.Tests;

/// <summary>The CNI config the lab wires a node's pods with: the one containerd and CRI-O would pick.</summary>
public sealed class LabCniConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-labcni-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void Touch(params string[] names)
    {
        foreach (var n in names)
        {
            File.WriteAllText(Path.Combine(_dir, n), "{}");
        }
    }

    [Fact]
    public void The_first_config_by_name_is_picked_and_renamed_away_ones_never()
    {
        Assert.Null(LabCniConfig.Find(_dir));
        Assert.Null(LabCniConfig.Find(Path.Combine(_dir, "missing")));
        Touch("05-loom.conflist.loom_bak", "README", "99-other.txt");
        Assert.Null(LabCniConfig.Find(_dir));
        Touch("10-loom.conflist");
        Assert.Equal(Path.Combine(_dir, "10-loom.conflist"), LabCniConfig.Find(_dir));
        Touch("05-loom.conflist");
        Assert.Equal(Path.Combine(_dir, "05-loom.conflist"), LabCniConfig.Find(_dir));
        Touch("00-single.conf");
        Assert.Equal(Path.Combine(_dir, "00-single.conf"), LabCniConfig.Find(_dir));
        Touch("00-a.json"); // byte order, as Go's sort.Strings: "00-a" before "00-s"
        Assert.Equal(Path.Combine(_dir, "00-a.json"), LabCniConfig.Find(_dir));
    }

    [Fact]
    public void A_single_plugin_config_runs_as_a_list_of_one_and_a_list_without_plugins_is_refused()
    {
        var chain = new CniChain("""{"cniVersion": "1.0.0", "name": "net", "type": "loom-cni", "bridge": "cni0"}""") { NodeNetns = "x", CniPath = "/x" };
        Assert.Equal("net", chain.Name);
        Assert.Equal("1.0.0", chain.CniVersion);
        var plugin = Assert.Single(JsonNode.Parse(chain.Json)!["plugins"]!.AsArray());
        Assert.Equal("loom-cni", (string?)plugin!["type"]);
        Assert.Equal("cni0", (string?)plugin["bridge"]);

        Assert.Contains("no plugins", Assert.Throws<LabException>(() => new CniChain("""{"name": "net", "plugins": []}""") { NodeNetns = "x", CniPath = "/x" }).Message, StringComparison.Ordinal);
        Assert.Contains("no plugins", Assert.Throws<LabException>(() => new CniChain("""{"name": "net"}""") { NodeNetns = "x", CniPath = "/x" }).Message, StringComparison.Ordinal);
    }
}
