using System.Text.Json.Nodes;

namespace Loom.Cni.Tests;

/// <summary>STATUS (1.1.0): ok, 50 when no ADD could get an address; VERSION lists exactly what is supported.</summary>
public sealed class StatusAndVersionTests : IDisposable
{
    private readonly CniNode _node = new();

    public void Dispose() => _node.Dispose();

    private JsonObject OneAddress(string version = "1.1.0") => _node.Conf(version, c => c["ipam"]!["ranges"] =
        new JsonArray(new JsonArray(new JsonObject { ["subnet"] = "10.244.7.0/24", ["rangeStart"] = "10.244.7.10", ["rangeEnd"] = "10.244.7.10" })));

    [Fact]
    public void Status_is_ok_on_a_fresh_node()
    {
        var run = _node.Exec("STATUS", _node.Conf(), ifName: null);
        Assert.True(run.Ok, run.ToString());
        Assert.Equal("", run.Stdout);
    }

    [Fact]
    public void Status_is_code_50_when_the_range_is_exhausted_and_ok_again_after_del()
    {
        var conf = OneAddress();
        Assert.True(_node.Exec("STATUS", conf, ifName: null).Ok);
        var pod = _node.NewPod();
        Assert.Equal("10.244.7.10", CniNode.IpOf(_node.Add(conf, "s1", pod)));
        CniAssert.Error(_node.Exec("STATUS", conf, ifName: null), 50, "address");
        _node.Del(conf, "s1", pod);
        var again = _node.Exec("STATUS", conf, ifName: null);
        Assert.True(again.Ok, again.ToString());
    }

    [Theory]
    [InlineData("1.0.0")]
    [InlineData("0.4.0")]
    public void Status_with_an_older_config_version_is_code_1(string version) =>
        CniAssert.Error(_node.Exec("STATUS", _node.Conf(version), ifName: null), 1, "STATUS", version);

    [Fact]
    public void Version_lists_exactly_the_supported_versions()
    {
        var run = _node.Exec("VERSION", """{"cniVersion": "1.0.0"}""", ifName: null);
        Assert.True(run.Ok, run.ToString());
        var v = AddResultShapeTests.Parse(run.Stdout);
        Assert.Equal("1.0.0", v.GetProperty("cniVersion").GetString());
        Assert.Equal(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"], v.GetProperty("supportedVersions").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void Version_with_empty_stdin_answers_in_the_latest_version()
    {
        var run = _node.Exec("VERSION", "", ifName: null);
        Assert.True(run.Ok, run.ToString());
        var v = AddResultShapeTests.Parse(run.Stdout);
        Assert.Equal("1.1.0", v.GetProperty("cniVersion").GetString());
        Assert.Equal(5, v.GetProperty("supportedVersions").GetArrayLength());
    }
}
