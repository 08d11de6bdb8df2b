using System.Net;
using Loom.Core.Migration;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;

namespace Loom.Core.Tests.Migration;

public class MigrationFinalizeTests
{
    private static async Task<IStore> AllMigratedAsync()
    {
        var store = await NodeMigrationTests.MigratingAsync();
        foreach (var node in MigrationCluster.NodeNames)
        {
            await new NodeMigration(store, new RecordingHost()).RunAsync(node);
        }

        await MigrationCluster.PodAsync(store, "web-1", "k8s-w1", "10.245.1.5");
        await store.PutAsync(Kinds.NodeConfig, new NodeConfig { Node = "k8s-w2", ServiceBackend = ServiceProxyMode.Nftables });
        return store;
    }

    [Fact]
    public async Task Finalize_is_refused_while_pods_have_old_pool_addresses()
    {
        var store = await AllMigratedAsync();
        await MigrationCluster.PodAsync(store, "old-1", "k8s-w2", "10.244.2.5");
        await MigrationCluster.PodAsync(store, "old-2", "k8s-cp", "10.244.0.9");
        var before = await MigrationCluster.DumpAsync(store);

        var e = await Assert.ThrowsAsync<MigrationRefusedException>(() => MigrationFinalize.RunAsync(store));

        Assert.StartsWith("2 pod(s) still have an address from network \"flannel\" (10.244.0.0/16)", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, await MigrationCluster.DumpAsync(store));
    }

    [Fact]
    public async Task A_step_is_done_only_once_every_node_applied_it_and_a_wait_that_fails_runs_the_step_again()
    {
        var store = await AllMigratedAsync();
        var seen = new List<(FinalizeStep Step, bool DoneYet)>();
        var e = await Assert.ThrowsAsync<TimeoutException>(() => MigrationFinalize.RunAsync(store, converged: async (step, ct) =>
        {
            var m = await MigrationRecord.ActiveAsync(store, ct);
            seen.Add((step, m.Finalize.Done));
            if (step == FinalizeStep.MasqueradeBpf)
            {
                throw new TimeoutException("k8s-w1 did not apply it");
            }
        }));

        Assert.Equal([(FinalizeStep.PolicyEnforcementDefault, false), (FinalizeStep.ServiceBackendEbpf, false), (FinalizeStep.NativeRouting, false), (FinalizeStep.MasqueradeBpf, false)], seen);
        var stopped = (await MigrationRecord.ActiveAsync(store)).Finalize;
        Assert.Equal((FinalizeStep.MasqueradeBpf, false, e.Message), (stopped.Step, stopped.Done, stopped.Error));

        var resumed = new List<FinalizeStep>();
        await MigrationFinalize.RunAsync(store, converged: (step, _) =>
        {
            resumed.Add(step);
            return Task.CompletedTask;
        });
        Assert.Equal(MigrationFinalize.Steps.SkipWhile(s => s != FinalizeStep.MasqueradeBpf), resumed);
    }

    [Fact]
    public async Task Finalize_reaches_the_end_state_in_order()
    {
        var store = await AllMigratedAsync();
        var steps = new List<FinalizeStep>();

        var m = await MigrationFinalize.RunAsync(store, steps.Add);

        Assert.Equal(MigrationFinalize.Steps, steps);
        Assert.True(m.IsFinalized);
        Assert.True((await MigrationRecord.GetAsync(store))!.IsFinalized);
        var cluster = (await store.GetAsync(Kinds.ClusterConfig, "cluster"))!.Value;
        Assert.Equal((PolicyEnforcementMode.Default, ServiceProxyMode.Ebpf, "cilium"), (cluster.PolicyEnforcementMode, cluster.ServiceBackend, cluster.DefaultNetwork));
        Assert.Equal([IPNetwork.Parse("10.245.0.0/16")], cluster.PodCidrPools);
        Assert.Equal(RoutingMode.Native, cluster.Routing);
        Assert.Null((await store.GetAsync(Kinds.NodeConfig, "k8s-w2"))!.Value.ServiceBackend);
        Assert.Null(await store.GetAsync(Kinds.NodeConfig, ClusterMigration.NodeConfigName));
        Assert.Equal(["cilium"], (await NetworkStore.ListAsync(store)).Select(n => n.Value.Name));
        var cilium = (await store.GetAsync(Kinds.Network, "cilium"))!.Value;
        Assert.Equal((RoutingMode.Native, null, true, IPNetwork.Parse("10.245.0.0/16"), HostRouting.Bpf, Masquerade.Bpf),
            (cilium.RoutingMode, cilium.Tunnel, cilium.AutoDirectNodeRoutes, cilium.NativeRoutingCidr, cilium.HostRouting, cilium.Masquerade));
        foreach (var node in MigrationCluster.NodeNames)
        {
            Assert.False(await NodeMigrationTests.LabelledAsync(store, node));
        }

        Assert.Equal("Cluster pods: 1/1 on cilium", (await MigrationStatusReport.ReadAsync(store)).Summary);
        await Assert.ThrowsAsync<MigrationRefusedException>(() => MigrationFinalize.RunAsync(store));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(8)]
    [InlineData(12)]
    [InlineData(15)]
    [InlineData(18)]
    [InlineData(21)]
    [InlineData(24)]
    [InlineData(27)]
    public async Task Finalize_interrupted_at_a_write_resumes_to_the_same_end(int crashAt)
    {
        var reference = await AllMigratedAsync();
        await MigrationFinalize.RunAsync(reference);

        var store = await AllMigratedAsync();
        var crashing = new CrashingStore(store) { CrashAtWrite = crashAt };
        try
        {
            await MigrationFinalize.RunAsync(crashing);
            Assert.Fail($"finalize made fewer than {crashAt} writes");
        }
        catch (IOException)
        {
            Assert.False((await MigrationRecord.GetAsync(store))!.IsFinalized);
        }

        await MigrationFinalize.RunAsync(store);
        Assert.Equal(await MigrationCluster.DumpAsync(reference), await MigrationCluster.DumpAsync(store));
    }

    [Fact]
    public async Task Nodes_are_not_moved_once_finalize_has_started()
    {
        var store = await AllMigratedAsync();
        await Assert.ThrowsAsync<IOException>(() => MigrationFinalize.RunAsync(new CrashingStore(store) { CrashAtWrite = 3 }));
        var revision = await store.GetRevisionAsync();

        var e = await Assert.ThrowsAsync<MigrationRefusedException>(() => new NodeMigration(store, new RecordingHost()).RollbackAsync("k8s-w1", "operator"));
        Assert.Equal("finalize has started (step policy-enforcement-default); run 'loom migrate finalize' to finish it", e.Message);
        await Assert.ThrowsAsync<MigrationRefusedException>(() => MigrationRollback.StoreOnlyAsync(store, "k8s-w1"));
        Assert.Equal(revision, await store.GetRevisionAsync());
    }

    [Fact]
    public async Task A_new_migration_may_start_after_finalize()
    {
        var store = await AllMigratedAsync();
        await MigrationFinalize.RunAsync(store);
        var next = Assert.Single(ClusterFileParser.ParseNetworks("name: next\npodCIDR: 10.250.0.0/16\nplumbing: routed\ntunnel: {device: loom_next, port: 8480}\n"));
        var m = await MigrationStart.RunAsync(store, next, TimeProvider.System);
        Assert.Equal(("cilium", "next"), (m.From, m.To));
    }
}
