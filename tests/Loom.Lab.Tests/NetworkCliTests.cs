using System.Diagnostics;
using System.Net;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;
using Loom.Store;
using Loom.Testing;

namespace Loom.Lab.Tests;

/// <summary>`loom network ...`, `loom node label` and `loom node config --network` as a user runs them, on a SQLite store of their own (no lab).</summary>
public sealed class NetworkCliTests : IDisposable
{
    private const string Flannel = "name: flannel\npodCIDR: 10.244.0.0/16\ntunnel:\n  device: loom.1\n  port: 8472\n";
    private const string CiliumTunnel = "name: cilium\npodCIDR: 10.245.0.0/16\nplumbing: routed\ntunnel: {device: loom_vxlan, port: 8473}\n";

    private readonly string _dir = Directory.CreateTempSubdirectory("loom-netcli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Config
    {
        get
        {
            var path = Path.Combine(_dir, "agent.json");
            File.WriteAllText(path, $"{{\"store\": {{\"type\": \"sqlite\", \"path\": \"{Path.Combine(_dir, "store.db")}\"}}}}");
            return path;
        }
    }

    private string File_(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public async Task Network_apply_get_list_delete_on_a_sqlite_store()
    {
        var config = Config;
        var apply = await Loom(["network", "apply", "-f", File_("both.yaml", Flannel + "---\n" + CiliumTunnel), "--config", config]);
        Assert.True(apply.Code == 0, apply.ToString());
        Assert.Equal("network/flannel created\nnetwork/cilium created\n", apply.Out);
        Assert.Equal("network/cilium unchanged\n", (await Loom(["network", "apply", "-f", File_("c.yaml", CiliumTunnel), "--config", config])).Out);

        var list = await Loom(["network", "list", "--config", config]);
        Assert.Matches(@"cilium\s+10\.245\.0\.0/16\s+/24\s+routed\s+vxlan loom_vxlan port 8473 vni 1\s+legacy\s+iptables\s*\n", list.Out);
        Assert.Matches(@"flannel\s+10\.244\.0\.0/16\s+/24\s+bridge\s+vxlan loom\.1 port 8472 vni 1\s+legacy\s+iptables\s+\*", list.Out);

        var get = await Loom(["network", "get", "cilium", "--config", config]);
        Assert.Equal(0, get.Code);
        Assert.Equal(ClusterFileParser.ParseNetworks(CiliumTunnel)[0], Assert.Single(ClusterFileParser.ParseNetworks(get.Out)));
        Assert.Contains("\"podCIDR\":\"10.245.0.0/16\"", (await Loom(["network", "get", "cilium", "-o", "json", "--config", config])).Out, StringComparison.Ordinal);
        var missing = await Loom(["network", "get", "nope", "--config", config]);
        Assert.Equal(1, missing.Code);
        Assert.Contains("network \"nope\" not found", missing.Err, StringComparison.Ordinal);

        // Invalid against the stored ones: refused whole, nothing written.
        var clash = await Loom(["network", "apply", "-f", File_("clash.yaml", "name: other\npodCIDR: 10.246.0.0/16\n---\n" + CiliumTunnel.Replace("10.245", "10.247", StringComparison.Ordinal)), "--config", config]);
        Assert.Equal(1, clash.Code);
        Assert.Contains("network \"other\": tunnel.port: Invalid value: 8472: network \"flannel\" already tunnels on this UDP port", clash.Err, StringComparison.Ordinal);
        Assert.Contains("network \"cilium\": podCIDR: Forbidden", clash.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("other", (await Loom(["network", "list", "--config", config])).Out, StringComparison.Ordinal);

        var unknown = await Loom(["network", "apply", "-f", File_("bad.yaml", "name: x\nbogus: 1\npodCIDR: 10.248.0.0/16\n"), "--config", config]);
        Assert.Equal(2, unknown.Code);
        Assert.Contains("bad.yaml: line 2, column 1: bogus: Invalid value: unknown field", unknown.Err, StringComparison.Ordinal);

        // A network a NodeConfig or the cluster's default names is not deleted.
        Assert.Equal(0, (await Loom(["node", "config", "k8s-w1", "--network", "cilium", "--config", config])).Code);
        var noSuch = await Loom(["node", "config", "k8s-w1", "--network", "nope", "--config", config]);
        Assert.Equal(1, noSuch.Code);
        Assert.Contains("network: Invalid value: \"nope\": no such network", noSuch.Err, StringComparison.Ordinal);
        var used = await Loom(["network", "delete", "cilium", "--config", config]);
        Assert.Equal(1, used.Code);
        Assert.Contains("primary network of nodeconfig \"k8s-w1\"", used.Err, StringComparison.Ordinal);
        Assert.Equal(0, (await Loom(["node", "config", "k8s-w1", "--network", "cluster", "--config", config])).Code);
        Assert.Equal("network/cilium deleted\n", (await Loom(["network", "delete", "cilium", "--config", config])).Out);
        Assert.Equal(1, (await Loom(["network", "delete", "cilium", "--config", config])).Code);
        var def = await Loom(["network", "delete", "flannel", "--config", config]);
        Assert.Equal(1, def.Code);
        Assert.Contains("the cluster's defaultNetwork", def.Err, StringComparison.Ordinal);
        Assert.Equal(1, (await Loom(["network", "get", "cilium", "--config", config])).Code);
    }

    [Fact]
    public async Task Node_label_sets_and_removes_labels_and_node_config_takes_a_selector()
    {
        var config = Config;
        var storeConfig = new StoreConfig { Type = "sqlite", Path = Path.Combine(_dir, "store.db") };
        var store = await StoreOpener.OpenAsync(storeConfig);
        await using (store)
        {
            await store.PutAsync(Kinds.Node, new Node
            {
                Name = "k8s-w1", UnderlayInterface = "eth1", UnderlayIp = IPAddress.Parse("192.168.10.101"),
                Labels = new Dictionary<string, string> { ["kubernetes.io/hostname"] = "k8s-w1", ["old"] = "x" },
            });
            await NetworkStore.WriteClusterAsync(store, ClusterFileParser.Parse("networks:\n  - " + CiliumTunnel.Replace("\n", "\n    ", StringComparison.Ordinal).TrimEnd() + "\n"));
        }

        var label = await Loom(["node", "label", "k8s-w1", "io.cilium.migration/cilium-default=true", "old-", "--config", config]);
        Assert.True(label.Code == 0, label.ToString());
        Assert.Equal(2, (await Loom(["node", "label", "k8s-w1", "bad key=1", "--config", config])).Code);
        Assert.Equal(1, (await Loom(["node", "label", "k8s-w9", "a=b", "--config", config])).Code);

        var selected = await Loom(["node", "config", "cilium-default", "--network", "cilium", "--node-selector", "io.cilium.migration/cilium-default=true", "--config", config]);
        Assert.True(selected.Code == 0, selected.ToString());
        Assert.Equal(2, (await Loom(["node", "config", "x", "--node-selector", "no-equals", "--config", config])).Code);

        store = await StoreOpener.OpenAsync(storeConfig);
        await using (store)
        {
            var node = (await store.GetAsync(Kinds.Node, "k8s-w1"))!.Value;
            Assert.Equal(new Dictionary<string, string> { ["kubernetes.io/hostname"] = "k8s-w1", ["io.cilium.migration/cilium-default"] = "true" }, node.Labels);
            var configs = (await store.ListAsync(Kinds.NodeConfig)).Items.Select(i => i.Value).ToList();
            var cluster = (await store.GetAsync(Kinds.ClusterConfig, "cluster"))!.Value;
            Assert.Equal("cilium", PrimaryNetwork.Resolve(node, configs, cluster with { DefaultNetwork = "flannel" }));
        }
    }

    [Fact]
    public async Task Lab_label_node_refuses_a_bad_label_before_it_looks_for_a_lab()
    {
        var bad = await Loom(["lab", "--lab-dir", Path.Combine(_dir, "lab"), "label", "node", "k8s-w1", "bad key=1", "ok-", "=x"]);
        Assert.Equal(2, bad.Code);
        Assert.Contains("loom lab label node: labels", bad.Err, StringComparison.Ordinal);
        Assert.Contains("\"=x\": must be KEY=VALUE or KEY-", bad.Err, StringComparison.Ordinal);
        var noLab = await Loom(["lab", "--lab-dir", Path.Combine(_dir, "lab"), "label", "node", "k8s-w1", "a=b"]);
        Assert.Equal(1, noLab.Code);
        Assert.Contains("no lab is up", noLab.Err, StringComparison.Ordinal);
    }

    internal sealed record Run(int Code, string Out, string Err)
    {
        public override string ToString() => $"exit {Code}\n{Out}\n{Err}";
    }

    internal static async Task<Run> Loom(string[] args)
    {
        var psi = new ProcessStartInfo(Path.Combine(CniRunner.BinDir, "loom"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
        return new Run(p.ExitCode, await stdout, await stderr);
    }
}
