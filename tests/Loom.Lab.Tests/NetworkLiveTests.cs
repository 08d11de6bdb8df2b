using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Selection;
using Loom.Core.Store;

namespace Loom.Lab.Tests;

/// <summary>
/// Networks changed on a running cluster: Cilium's network applied live beside Flannel's, one node switched to it by
/// a label and a NodeConfig (as a CiliumNodeConfig selects <c>io.cilium.migration/cilium-default=true</c>), pods of
/// each network reaching the other's; then the routed network deleted live, leaving nothing of its own on any node.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class NetworkLiveTests
{
    private const string MigrationLabel = "io.cilium.migration/cilium-default";
    private const string NodeConfigName = "cilium-default";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>What a node's kernel holds, one fact a line, with counters and link states left out.</summary>
    private const string KernelDump = """
        ip -o link show | awk -F': ' '{print "link " $2}' | sed 's/@.*//'
        ip -4 route show table all | sed -e 's/ linkdown//' -e 's/^/route /'
        ip rule show | sed 's/^/rule /'
        ip neigh show nud permanent | sed 's/^/neigh /'
        bridge fdb show | grep ' dst ' | sed 's/^/fdb /'
        iptables-save | grep -v '^#' | sed -E -e 's/\[[0-9]+:[0-9]+\]//' -e 's/^/iptables /'
        nft list ruleset 2>/dev/null | sed -E -e 's/counter packets [0-9]+ bytes [0-9]+/counter/' -e 's/^/nft /'
        tc filter show dev eth1 ingress | sed 's/^/tc ingress /'
        tc filter show dev eth1 egress | sed 's/^/tc egress /'
        """;

    public static TheoryData<string> Routed => ["cilium-tunnel.yaml", "cilium.yaml"];

    [Theory]
    [MemberData(nameof(Routed))]
    public async Task Two_networks_at_once_pods_of_each_reach_the_other_across_nodes_and_back(string example)
    {
        var o = TestLab.Options(agents: true);
        using var stop = new CancellationTokenSource();
        var servers = new List<IDisposable>();
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var flannel = Network.Flannel();
            var a1 = Lab.AddPod(state, "a1", "k8s-w1");
            var a2 = Lab.AddPod(state, "a2", "k8s-w2");
            var cilium = await ApplyAsync(state, example);
            await SwitchAsync(o, state, "k8s-w2", cilium, on: true);
            var b2 = Lab.AddPod(state, "b2", "k8s-w2");
            servers.AddRange([ServiceTests.Serve(a1, stop.Token), ServiceTests.Serve(a2, stop.Token), ServiceTests.Serve(b2, stop.Token)]);

            Assert.True(cilium.PodCidr.Contains(ExternalServer.PodIp(b2)), $"b2, k8s-w2's new pod, got {b2.Ip}, outside {cilium.Name}'s {cilium.PodCidr}");
            Assert.Equal(NetworkCombination.RoutedConflist, Path.GetFileName(b2.ConfList));
            Assert.True(flannel.PodCidr.Contains(ExternalServer.PodIp(a2)), $"a2 changed network: {a2.Ip}"); // running pods keep theirs
            await NetworkChecks.PodToPodAsync(a1, b2);
            await NetworkChecks.PodToPodAsync(b2, a1);
            await NetworkChecks.PodToPodAsync(a2, b2);
            await NetworkChecks.PodToPodAsync(b2, a2);

            // A pod wired before the switch is deleted with the config it was wired with, renamed away or not.
            Lab.DeletePod(state, "a2");
        }
        finally
        {
            await stop.CancelAsync();
            servers.ForEach(s => s.Dispose());
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    [Theory]
    [MemberData(nameof(Routed))]
    public async Task A_routed_network_deleted_live_leaves_nothing_of_its_own_on_any_node(string example)
    {
        var o = TestLab.Options(agents: true);
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var before = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
            foreach (var n in state.Nodes)
            {
                before[n.Name] = await SnapshotAsync(state, n.Name);
            }

            var cilium = await ApplyAsync(state, example);
            await SwitchAsync(o, state, "k8s-w2", cilium, on: true);
            var pod = Lab.AddPod(state, "b2", "k8s-w2");
            Assert.True(cilium.PodCidr.Contains(ExternalServer.PodIp(pod)), $"b2 got {pod.Ip}, outside {cilium.Name}'s {cilium.PodCidr}");
            Lab.DeletePod(state, "b2");
            await SwitchAsync(o, state, "k8s-w2", cilium, on: false);
            var store = await Lab.OpenStoreAsync(state);
            await using (store)
            {
                Assert.True(await NetworkStore.DeleteAsync(store, cilium.Name), $"network {cilium.Name} was not in the store");
            }

            foreach (var n in state.Nodes)
            {
                var left = new List<string>();
                var deadline = DateTime.UtcNow + Patience;
                do
                {
                    await Task.Delay(250);
                    left = [.. (await SnapshotAsync(state, n.Name)).Except(before[n.Name]).Order(StringComparer.Ordinal)];
                }
                while (left.Count > 0 && DateTime.UtcNow < deadline);

                Assert.True(left.Count == 0, $"{Patience.TotalSeconds} s after network {cilium.Name} was deleted, {n.Name} still has what it added:\n{string.Join("\n", left.Take(40))}");
            }
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    private static async Task<Network> ApplyAsync(LabState state, string example)
    {
        var network = ClusterFileParser.Parse(LabClusterFileTests.Example(example)).Networks.Single();
        var store = await Lab.OpenStoreAsync(state);
        await using (store)
        {
            await NetworkStore.ApplyAsync(store, [network]);
        }

        // Every node programs every network: its loom_host (routed plumbing) and its tunnel device, if any.
        string[] devices = network.Tunnel is { } t ? ["loom_host", t.Device] : ["loom_host"];
        foreach (var n in state.Nodes)
        {
            foreach (var device in devices)
            {
                await WaitAsync(() => NetworkChecks.LinkExistsAsync(n.Netns, device),
                    $"network {network.Name} applied live: {n.Name} has no {device}");
            }
        }

        return network;
    }

    /// <summary>Labels (or unlabels) the node through `loom lab label node` and selects it with a NodeConfig; waits until its runtime picks the network's CNI config.</summary>
    private static async Task SwitchAsync(LabOptions o, LabState state, string node, Network network, bool on)
    {
        var change = on ? $"{MigrationLabel}=true" : $"{MigrationLabel}-";
        var label = await NetworkCliTests.Loom(["lab", "--lab-dir", o.LabDir, "--prefix", o.Prefix, "label", "node", node, change]);
        Assert.True(label.Code == 0 && label.Out.Contains($"node/{node} labeled", StringComparison.Ordinal), label.ToString());
        var store = await Lab.OpenStoreAsync(state);
        await using (store)
        {
            if (on)
            {
                await NetworkStore.PutNodeConfigAsync(store, new NodeConfig
                {
                    Node = NodeConfigName, Network = network.Name, NodeSelector = LabelSelector.FromSet(new Dictionary<string, string> { [MigrationLabel] = "true" }),
                }, 0);
            }
            else
            {
                await store.DeleteAsync(Kinds.NodeConfig, NodeConfigName);
            }
        }

        var expected = on ? NetworkCombination.RoutedConflist : NetworkCombination.BridgeConflist;
        await WaitAsync(() => Task.FromResult(Path.GetFileName(LabCniConfig.Find(state.CniConfDir(node))) == expected),
            $"{node} {(on ? "switched to" : "back from")} {network.Name}: its runtime still picks {LabCniConfig.Find(state.CniConfDir(node)) ?? "nothing"}, not {expected}");
        var other = state.Nodes.First(n => n.Name != node).Name;
        Assert.Equal(NetworkCombination.BridgeConflist, Path.GetFileName(LabCniConfig.Find(state.CniConfDir(other))));
    }

    private static async Task WaitAsync(Func<Task<bool>> done, string failure)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await done())
        {
            Assert.True(DateTime.UtcNow < deadline, $"{failure} after {Patience.TotalSeconds} s");
            await Task.Delay(250);
        }
    }

    /// <summary>The node's kernel state (<see cref="KernelDump"/>), its eBPF pins and its CNI directory, one fact a line.</summary>
    private static async Task<HashSet<string>> SnapshotAsync(LabState state, string node)
    {
        var lines = (await TestLab.Capture(state.Node(node).Netns, "sh", "-c", KernelDump)).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        var pins = Lab.BpfPinDir(state, node);
        if (Directory.Exists(pins))
        {
            lines.UnionWith(Directory.EnumerateFileSystemEntries(pins, "*", SearchOption.AllDirectories).Select(p => "pin " + Path.GetRelativePath(pins, p)));
        }

        lines.UnionWith(Directory.EnumerateFileSystemEntries(state.CniConfDir(node)).Select(f => "cni " + Path.GetFileName(f)));
        return lines;
    }
}
