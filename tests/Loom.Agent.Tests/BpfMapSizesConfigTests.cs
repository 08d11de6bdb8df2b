using System.Text;
using Loom.Core.Model;

namespace Loom.Agent.Tests;

/// <summary>agent.json's bpfMapSizes: named sizes are read, the others keep lb4.c's defaults, bad ones stop the agent.</summary>
public sealed class BpfMapSizesConfigTests
{
    private static AgentConfig Parse(string json) => AgentConfig.Parse(Encoding.UTF8.GetBytes(json), "agent.json");

    [Fact]
    public void Named_sizes_are_read_and_the_others_keep_their_defaults()
    {
        var config = Parse("""{"node": "k8s-w1", "bpfMapSizes": {"connTrack": 524288, "interfaces": 32768}}""");
        Assert.Equal(524288, config.BpfMapSizes.ConnTrack);
        Assert.Equal(32768, config.BpfMapSizes.Interfaces);
        Assert.Equal(65536, config.BpfMapSizes.Services);
        Assert.Equal(16384, new AgentConfig().BpfMapSizes.Interfaces);
        Assert.Empty(ClusterCheck.Errors(new ClusterConfig(), config));
    }

    [Fact]
    public void A_size_out_of_range_is_refused_at_start_naming_the_setting_and_the_map()
    {
        var config = Parse("""{"node": "k8s-w1", "bpfMapSizes": {"connTrack": 5}}""");
        var e = Assert.Throws<AgentStartException>(() => ClusterCheck.Validate(new ClusterConfig(), config));
        Assert.Contains("bpfMapSizes (agent config): map size connTrack (lb4_ct) must be between 16 and 16777216; got 5", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_map_name_is_refused() =>
        Assert.Throws<AgentConfigException>(() => Parse("""{"bpfMapSizes": {"lb4_ct": 1024}}"""));
}
