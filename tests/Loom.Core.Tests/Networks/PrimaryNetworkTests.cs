using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Selection;

namespace Loom.Core.Tests.Networks;

public class PrimaryNetworkTests
{
    private const string MigrationLabel = "io.cilium.migration/cilium-default";

    private static readonly ClusterConfig Cluster = new();

    private static readonly Dictionary<string, string> Migrated = new() { [MigrationLabel] = "true" };

    private static readonly NodeConfig CiliumDefault = new()
    {
        Node = "cilium-default",
        Network = "cilium",
        NodeSelector = new LabelSelector { MatchLabels = new Dictionary<string, string> { [MigrationLabel] = "true" } },
    };

    [Fact]
    public void Without_node_configs_a_node_joins_the_cluster_default() =>
        Assert.Equal("flannel", PrimaryNetwork.Resolve("k8s-w1", Migrated, [], Cluster));

    [Fact]
    public void A_selector_moves_the_labelled_nodes_only()
    {
        Assert.Equal("cilium", PrimaryNetwork.Resolve("k8s-w1", Migrated, [CiliumDefault], Cluster));
        Assert.Equal("flannel", PrimaryNetwork.Resolve("k8s-w2", new Dictionary<string, string>(), [CiliumDefault], Cluster));
        Assert.Equal("flannel", PrimaryNetwork.Resolve("k8s-w2", new Dictionary<string, string> { [MigrationLabel] = "false" }, [CiliumDefault], Cluster));
    }

    [Fact]
    public void A_config_named_after_the_node_wins_over_a_selector()
    {
        var own = new NodeConfig { Node = "k8s-w1", Network = "flannel" };
        Assert.Equal("flannel", PrimaryNetwork.Resolve("k8s-w1", Migrated, [CiliumDefault, own], Cluster));
        Assert.Equal("cilium", PrimaryNetwork.Resolve("k8s-w2", Migrated, [CiliumDefault, own], Cluster));
    }

    [Fact]
    public void Configs_without_a_network_are_passed_over()
    {
        var backendOnly = new NodeConfig { Node = "k8s-w1", ServiceBackend = ServiceProxyMode.Nftables };
        Assert.Equal("cilium", PrimaryNetwork.Resolve("k8s-w1", Migrated, [backendOnly, CiliumDefault], Cluster));
        Assert.Equal("other", PrimaryNetwork.Resolve("k8s-w1", Migrated, [backendOnly], Cluster with { DefaultNetwork = "other" }));
    }

    [Fact]
    public void A_selector_config_never_applies_by_its_name()
    {
        var named = CiliumDefault with { Node = "k8s-w1" };
        Assert.Equal("flannel", PrimaryNetwork.Resolve("k8s-w1", new Dictionary<string, string>(), [named], Cluster));
    }

    [Fact]
    public void Several_matching_selectors_resolve_to_the_first_by_name_in_any_order()
    {
        var a = CiliumDefault with { Node = "a-first", Network = "net-a" };
        var b = CiliumDefault with { Node = "b-second", Network = "net-b" };
        Assert.Equal("net-a", PrimaryNetwork.Resolve("k8s-w1", Migrated, [a, b], Cluster));
        Assert.Equal("net-a", PrimaryNetwork.Resolve("k8s-w1", Migrated, [b, a], Cluster));
    }

    [Fact]
    public void Match_expressions_select_too_and_node_configs_round_trip_through_json()
    {
        var config = new NodeConfig
        {
            Node = "not-legacy",
            Network = "cilium",
            NodeSelector = new LabelSelector { MatchExpressions = [new LabelSelectorRequirement("legacy", SelectorOperator.DoesNotExist, [])] },
        };
        var back = JsonSerializer.Deserialize(JsonSerializer.Serialize(config, LoomJsonContext.Default.NodeConfig), LoomJsonContext.Default.NodeConfig)!;
        var node = new Node { Name = "k8s-w1", UnderlayInterface = "eth1", UnderlayIp = System.Net.IPAddress.Loopback };
        Assert.Equal("cilium", PrimaryNetwork.Resolve(node, [back], Cluster));
        Assert.Equal("flannel", PrimaryNetwork.Resolve(node with { Labels = new Dictionary<string, string> { ["legacy"] = "" } }, [back], Cluster));
    }
}
