using System.Net;
using Loom.Core.Migration;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;
using Microsoft.Extensions.Time.Testing;

namespace Loom.Core.Tests.Migration;

public class MigrationStartTests
{
    private static readonly FakeTimeProvider Time = new(new DateTimeOffset(2026, 11, 30, 6, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task Start_writes_exactly_the_network_the_node_config_and_the_migration()
    {
        var store = await MigrationCluster.CreateAsync();
        var before = (await MigrationCluster.DumpAsync(store)).Split('\n');

        var m = await MigrationStart.RunAsync(store, null, Time);

        var after = (await MigrationCluster.DumpAsync(store)).Split('\n');
        Assert.Equal(["config/cluster", "migration/cluster", "network/cilium", "nodeconfig/loom-migration"],
            after.Except(before).Select(l => l[..l.IndexOf(' ', StringComparison.Ordinal)]).Order(StringComparer.Ordinal));
        Assert.Equal(["config/cluster"], before.Except(after).Select(l => l[..l.IndexOf(' ', StringComparison.Ordinal)]));

        var cilium = (await store.GetAsync(Kinds.Network, "cilium"))!.Value;
        Assert.Equal(IPNetwork.Parse("10.245.0.0/16"), cilium.PodCidr);
        Assert.Equal(24, cilium.NodeMaskSize);
        Assert.Equal(Plumbing.Routed, cilium.Plumbing);
        Assert.Equal(new TunnelConfig { Device = "loom_vxlan", Port = 8473, Vni = 2 }, cilium.Tunnel);
        Assert.Equal((HostRouting.Legacy, Masquerade.Iptables), (cilium.HostRouting, cilium.Masquerade));

        var config = (await store.GetAsync(Kinds.NodeConfig, ClusterMigration.NodeConfigName))!.Value;
        Assert.Equal("cilium", config.Network);
        Assert.Equal(new Dictionary<string, string> { ["io.loom.migration/loom-default"] = "true" }, config.NodeSelector!.MatchLabels);

        var cluster = (await store.GetAsync(Kinds.ClusterConfig, "cluster"))!.Value;
        Assert.Equal(PolicyEnforcementMode.Never, cluster.PolicyEnforcementMode);
        Assert.Equal("flannel", cluster.DefaultNetwork);

        var stored = await MigrationRecord.GetAsync(store);
        Assert.Equal(("flannel", "cilium", Time.GetUtcNow(), IPNetwork.Parse("10.244.0.0/16")), (stored!.From, stored.To, stored.Started, stored.FromPodCidr));
        Assert.Equal(MigrationCluster.NodeNames, stored.Nodes.Keys.Order(StringComparer.Ordinal));
        Assert.All(stored.Nodes.Values, s => Assert.Equal(NodeMigrationPhase.Pending, s.Phase));
        Assert.Equal(m.Nodes.Count, stored.Nodes.Count);
    }

    [Fact]
    public async Task Start_keeps_the_old_networks_masquerade()
    {
        var store = await MigrationCluster.CreateAsync();
        await NetworkStore.ApplyAsync(store, [Network.Flannel() with { Masquerade = Masquerade.None }]);
        await MigrationStart.RunAsync(store, null, Time);
        Assert.Equal(Masquerade.None, (await store.GetAsync(Kinds.Network, "cilium"))!.Value.Masquerade);
    }

    [Fact]
    public async Task Start_with_a_network_file_stores_that_network_instead()
    {
        var store = await MigrationCluster.CreateAsync();
        var mine = Assert.Single(ClusterFileParser.ParseNetworks("name: next\npodCIDR: 10.250.0.0/16\nplumbing: routed\ntunnel: {device: loom_next, port: 8480, vni: 7}\n"));
        var m = await MigrationStart.RunAsync(store, mine, Time);
        Assert.Equal("next", m.To);
        Assert.Equal(mine, (await store.GetAsync(Kinds.Network, "next"))!.Value);
        Assert.Equal("next", (await store.GetAsync(Kinds.NodeConfig, ClusterMigration.NodeConfigName))!.Value.Network);
        Assert.Null(await store.GetAsync(Kinds.Network, "cilium"));
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { "name: c\npodCIDR: 10.244.128.0/17\nplumbing: routed\ntunnel: {device: loom_c, port: 8480}\n", "podCIDR: Invalid value: \"10.244.128.0/17\": overlaps the podCIDR 10.244.0.0/16 of network \"flannel\"" },
        { "name: c\npodCIDR: 10.245.0.0/16\nplumbing: routed\ntunnel: {device: loom_c, port: 8472}\n", "tunnel.port: Invalid value: 8472: network \"flannel\" already tunnels on this UDP port" },
        { "name: c\npodCIDR: 10.245.0.0/16\nplumbing: routed\ntunnel: {device: loom.1, port: 8480}\n", "tunnel.device: Invalid value: \"loom.1\": network \"flannel\" already uses this device" },
        { "name: c\npodCIDR: 10.245.0.0/16\ntunnel: {device: loom_c, port: 8480}\n", "plumbing: Invalid value: \"bridge\": network \"flannel\" is already the bridge network" },
        { "name: flannel\npodCIDR: 10.244.0.0/16\n", "network \"flannel\" is already the cluster's default network" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task A_refused_start_names_the_reason_and_writes_nothing(string yaml, string reason)
    {
        var store = await MigrationCluster.CreateAsync();
        var before = await MigrationCluster.DumpAsync(store);
        var revision = await store.GetRevisionAsync();

        var e = await Assert.ThrowsAnyAsync<Exception>(() => MigrationStart.RunAsync(store, Assert.Single(ClusterFileParser.ParseNetworks(yaml)), Time));

        Assert.True(e is NetworkRefusedException or MigrationRefusedException, e.ToString());
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Equal(revision, await store.GetRevisionAsync());
        Assert.Equal(before, await MigrationCluster.DumpAsync(store));
    }

    [Fact]
    public async Task A_cluster_already_migrating_is_refused_and_left_as_it_was()
    {
        var store = await MigrationCluster.CreateAsync();
        await MigrationStart.RunAsync(store, null, Time);
        var before = await MigrationCluster.DumpAsync(store);
        var revision = await store.GetRevisionAsync();

        var other = Assert.Single(ClusterFileParser.ParseNetworks("name: next\npodCIDR: 10.250.0.0/16\nplumbing: routed\ntunnel: {device: loom_next, port: 8480}\n"));
        var e = await Assert.ThrowsAsync<MigrationRefusedException>(() => MigrationStart.RunAsync(store, other, Time));
        Assert.StartsWith("the cluster is already migrating from network \"flannel\" to \"cilium\"", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<MigrationRefusedException>(() => MigrationStart.RunAsync(store, null, Time));
        Assert.Equal(revision, await store.GetRevisionAsync());
        Assert.Equal(before, await MigrationCluster.DumpAsync(store));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task A_start_interrupted_at_any_write_runs_again_to_the_same_end(int crashAt)
    {
        var reference = await MigrationCluster.CreateAsync();
        await MigrationStart.RunAsync(reference, null, Time);

        var inner = await MigrationCluster.CreateAsync();
        var crashing = new CrashingStore(inner) { CrashAtWrite = crashAt };
        await Assert.ThrowsAsync<IOException>(() => MigrationStart.RunAsync(crashing, null, Time));
        Assert.Null(await MigrationRecord.GetAsync(inner));
        await MigrationStart.RunAsync(inner, null, Time);

        Assert.Equal(await MigrationCluster.DumpAsync(reference), await MigrationCluster.DumpAsync(inner));
    }
}
