using System.Net;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Selection;
using Loom.Core.Store;

namespace Loom.Core.Tests.Networks;

public class NetworkStoreTests
{
    private static readonly Network CiliumTunnel = new()
    {
        Name = "cilium",
        PodCidr = IPNetwork.Parse("10.245.0.0/16"),
        Plumbing = Plumbing.Routed,
        Tunnel = new TunnelConfig { Device = "loom_vxlan", Port = 8473 },
    };

    private static async Task<IStore> FlannelClusterAsync()
    {
        var store = MemoryStore.Create();
        await NetworkStore.WriteClusterAsync(store, ClusterFile.Default());
        return store;
    }

    private static async Task<IReadOnlyList<string>> NamesAsync(IStore store) =>
        [.. (await NetworkStore.ListAsync(store)).Select(n => n.Value.Name)];

    [Fact]
    public async Task Apply_creates_configures_and_leaves_unchanged()
    {
        var store = await FlannelClusterAsync();
        Assert.Equal([("cilium", "created")], await NetworkStore.ApplyAsync(store, [CiliumTunnel]));
        Assert.Equal([("cilium", "unchanged")], await NetworkStore.ApplyAsync(store, [CiliumTunnel]));
        Assert.Equal([("cilium", "configured")], await NetworkStore.ApplyAsync(store, [CiliumTunnel with { Masquerade = Masquerade.None }]));
        Assert.Equal(Masquerade.None, (await store.GetAsync(Kinds.Network, "cilium"))!.Value.Masquerade);
        Assert.Equal(["cilium", "flannel"], await NamesAsync(store));
    }

    [Fact]
    public async Task Apply_conflicting_with_a_stored_network_writes_nothing()
    {
        var store = await FlannelClusterAsync();
        var ok = CiliumTunnel with { Name = "ok", PodCidr = IPNetwork.Parse("10.250.0.0/16"), Tunnel = new TunnelConfig { Device = "loom_ok", Port = 8480 } };
        var e = await Assert.ThrowsAsync<NetworkRefusedException>(() => NetworkStore.ApplyAsync(store, [ok, CiliumTunnel with { Tunnel = new TunnelConfig() }]));
        Assert.Equal(
        [
            "network \"cilium\": tunnel.port: Invalid value: 8472: network \"flannel\" already tunnels on this UDP port; a node has one VXLAN socket per port",
            "network \"cilium\": tunnel.device: Invalid value: \"loom.1\": network \"flannel\" already uses this device",
        ], e.Errors);
        Assert.Equal(["flannel"], await NamesAsync(store));

        var overlap = await Assert.ThrowsAsync<NetworkRefusedException>(() => NetworkStore.ApplyAsync(store, [CiliumTunnel with { PodCidr = IPNetwork.Parse("10.244.0.0/15") }]));
        Assert.Contains("network \"cilium\": podCIDR: Invalid value: \"10.244.0.0/15\": overlaps the podCIDR 10.244.0.0/16 of network \"flannel\"", overlap.Errors);
        var service = await Assert.ThrowsAsync<NetworkRefusedException>(() => NetworkStore.ApplyAsync(store, [CiliumTunnel with { PodCidr = IPNetwork.Parse("10.96.0.0/16") }]));
        Assert.Equal(["network \"cilium\": podCIDR: Invalid value: \"10.96.0.0/16\": overlaps the service CIDR 10.96.0.0/12"], service.Errors);
        Assert.Equal(["flannel"], await NamesAsync(store));
    }

    [Fact]
    public async Task A_stored_pool_does_not_move()
    {
        var store = await FlannelClusterAsync();
        var e = await Assert.ThrowsAsync<NetworkRefusedException>(() => NetworkStore.ApplyAsync(store, [Network.Flannel() with { NodeMaskSize = 25 }]));
        Assert.StartsWith("network \"flannel\": nodeMaskSize: Forbidden: a stored network's pool (10.244.0.0/16, /24 per node) cannot change", Assert.Single(e.Errors), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Delete_refuses_the_default_and_networks_node_configs_name()
    {
        var store = await FlannelClusterAsync();
        await NetworkStore.ApplyAsync(store, [CiliumTunnel]);
        var selector = new LabelSelector { MatchLabels = new Dictionary<string, string> { ["io.cilium.migration/cilium-default"] = "true" } };
        await NetworkStore.PutNodeConfigAsync(store, new NodeConfig { Node = "cilium-default", Network = "cilium", NodeSelector = selector }, expectedRevision: 0);

        var def = await Assert.ThrowsAsync<NetworkRefusedException>(() => NetworkStore.DeleteAsync(store, "flannel"));
        Assert.Equal(["network \"flannel\" is the cluster's defaultNetwork; make another network the default first"], def.Errors);
        var used = await Assert.ThrowsAsync<NetworkRefusedException>(() => NetworkStore.DeleteAsync(store, "cilium"));
        Assert.StartsWith("network \"cilium\" is the primary network of nodeconfig \"cilium-default\"", Assert.Single(used.Errors), StringComparison.Ordinal);
        Assert.Equal(["cilium", "flannel"], await NamesAsync(store));

        await store.DeleteAsync(Kinds.NodeConfig, "cilium-default");
        Assert.True(await NetworkStore.DeleteAsync(store, "cilium"));
        Assert.False(await NetworkStore.DeleteAsync(store, "cilium"));
        Assert.Equal(["flannel"], await NamesAsync(store));
    }

    [Fact]
    public async Task Node_configs_must_name_a_stored_network()
    {
        var store = await FlannelClusterAsync();
        var e = await Assert.ThrowsAsync<NetworkRefusedException>(() => NetworkStore.PutNodeConfigAsync(store, new NodeConfig { Node = "k8s-w1", Network = "cilium" }, 0));
        Assert.Equal(["nodeconfig \"k8s-w1\": network: Invalid value: \"cilium\": no such network; the networks are: \"flannel\""], e.Errors);
        Assert.Empty((await store.ListAsync(Kinds.NodeConfig)).Items);
    }

    [Fact]
    public async Task A_malformed_stored_network_refuses_changes_instead_of_skipping_the_check()
    {
        var store = await FlannelClusterAsync();
        await store.PutAsync(Kinds.Network.Name, "broken", "{\"name\":\"broken\",\"podCIDR\":\"10.245.0.7/16\"}");
        var e = await Assert.ThrowsAsync<NetworkRefusedException>(() => NetworkStore.ApplyAsync(store, [CiliumTunnel]));
        Assert.StartsWith("stored network \"broken\" is malformed", Assert.Single(e.Errors), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_flannel_cluster_is_stored_as_the_default_cluster_config_and_its_network()
    {
        var store = await FlannelClusterAsync();
        Assert.Equal(Network.Flannel(), (await store.GetAsync(Kinds.Network, "flannel"))!.Value);
        Assert.Equal("flannel", (await store.GetAsync(Kinds.ClusterConfig, "cluster"))!.Value.DefaultNetwork);
        await Assert.ThrowsAsync<NetworkRefusedException>(() => NetworkStore.WriteClusterAsync(MemoryStore.Create(), new ClusterFile([], new ClusterConfig())));
    }
}
