namespace Loom.Lab.Tests;

/// <summary>`loom migrate start|status|finalize` as an operator runs them, on a SQLite store of their own (no lab).</summary>
public sealed class MigrateCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-migcli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static Task<NetworkCliTests.Run> Loom(params string[] args) => NetworkCliTests.Loom(args);

    private async Task<string> FlannelClusterAsync()
    {
        var config = Write("agent.json", $"{{\"store\": {{\"type\": \"sqlite\", \"path\": \"{Path.Combine(_dir, "store.db")}\"}}}}");
        var apply = await Loom("network", "apply", "-f", Write("flannel.yaml", "name: flannel\npodCIDR: 10.244.0.0/16\n"), "--config", config);
        Assert.True(apply.Code == 0, apply.ToString());
        return config;
    }

    [Fact]
    public async Task Start_status_and_finalize_move_the_cluster_to_the_cilium_network()
    {
        var config = await FlannelClusterAsync();
        Assert.Contains("No migration.", (await Loom("migrate", "status", "--config", config)).Out, StringComparison.Ordinal);

        var start = await Loom("migrate", "start", "--config", config);
        Assert.True(start.Code == 0, start.ToString());
        Assert.Contains("network/cilium ready beside network/flannel", start.Out, StringComparison.Ordinal);
        var again = await Loom("migrate", "start", "--config", config);
        Assert.Equal(1, again.Code);
        Assert.Contains("already migrating from network \"flannel\" to \"cilium\"", again.Err, StringComparison.Ordinal);

        var status = await Loom("migrate", "status", "--config", config);
        Assert.Contains("Migration: flannel -> cilium", status.Out, StringComparison.Ordinal);
        var list = (await Loom("network", "list", "--config", config)).Out;
        Assert.Matches(@"cilium\s+10\.245\.0\.0/16\s+/24\s+routed\s+vxlan loom_vxlan port 8473", list);
        Assert.Matches(@"flannel\s+10\.244\.0\.0/16\s+/24\s+bridge\s+vxlan loom\.1 port 8472 vni 1\s+legacy\s+iptables\s+\*", list);

        var finalize = await Loom("migrate", "finalize", "--config", config);
        Assert.True(finalize.Code == 0, finalize.ToString());
        Assert.Contains("network \"flannel\" deleted", finalize.Out, StringComparison.Ordinal);
        list = (await Loom("network", "list", "--config", config)).Out;
        Assert.DoesNotContain("flannel", list, StringComparison.Ordinal);
        Assert.Matches(@"cilium\s+10\.245\.0\.0/16\s+/24\s+routed\s+native \(direct routes\)\s+bpf\s+bpf\s+\*", list);
        Assert.Equal(1, (await Loom("migrate", "finalize", "--config", config)).Code);
    }

    [Fact]
    public async Task A_start_refused_names_the_reason_and_leaves_the_networks_as_they_were()
    {
        var config = await FlannelClusterAsync();
        var before = (await Loom("network", "list", "--config", config)).Out;
        var clash = Write("clash.yaml", "name: cilium\npodCIDR: 10.244.128.0/17\nplumbing: routed\ntunnel: {device: loom_vxlan, port: 8472}\n");
        var start = await Loom("migrate", "start", "-f", clash, "--config", config);
        Assert.Equal(1, start.Code);
        Assert.Contains("overlaps the podCIDR 10.244.0.0/16 of network \"flannel\"", start.Err, StringComparison.Ordinal);
        Assert.Contains("tunnel.port", start.Err, StringComparison.Ordinal);
        Assert.Equal(before, (await Loom("network", "list", "--config", config)).Out);
        Assert.Contains("No migration.", (await Loom("migrate", "status", "--config", config)).Out, StringComparison.Ordinal);
    }
}
