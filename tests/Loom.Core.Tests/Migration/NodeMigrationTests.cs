using Loom.Core.Migration;
using Loom.Core.Store;
using Microsoft.Extensions.Time.Testing;

namespace Loom.Core.Tests.Migration;

public class NodeMigrationTests
{
    private const string Label = "io.loom.migration/loom-default";

    internal static async Task<IStore> MigratingAsync()
    {
        var store = await MigrationCluster.CreateAsync();
        await MigrationStart.RunAsync(store, null, new FakeTimeProvider());
        return store;
    }

    internal static async Task<bool> LabelledAsync(IStore store, string node) =>
        (await store.GetAsync(Kinds.Node, node))!.Value.Labels.ContainsKey(Label);

    [Fact]
    public async Task The_steps_run_in_order_each_recorded_before_it_runs()
    {
        var store = await MigratingAsync();
        var seen = new List<string>();
        var host = new RecordingHost();
        host.OnCall = async call =>
        {
            var state = (await MigrationRecord.GetAsync(store))!.NodeState("k8s-w1");
            seen.Add($"{call}: {state.Phase} {state.Step} done={state.Done} labelled={await LabelledAsync(store, "k8s-w1")}");
        };

        var result = await new NodeMigration(store, host).RunAsync("k8s-w1");

        Assert.Equal(new NodeMigrationResult("k8s-w1", NodeMigrationPhase.Migrated, null), result);
        Assert.Equal(
        [
            "cordon k8s-w1: Migrating Cordon done=False labelled=False",
            "drain k8s-w1: Migrating Drain done=False labelled=False",
            "restart-agent k8s-w1: Migrating RestartAgent done=False labelled=True",
            "reboot k8s-w1: Migrating Reboot done=False labelled=True",
            "verify k8s-w1 cilium: Migrating Verify done=False labelled=True",
            "uncordon k8s-w1: Migrating Uncordon done=False labelled=True",
        ], seen);
        Assert.Equal(new NodeMigrationState { Phase = NodeMigrationPhase.Migrated, Step = MigrationStep.Uncordon, Done = true },
            (await MigrationRecord.GetAsync(store))!.NodeState("k8s-w1"));
        Assert.Equal(NodeMigrationPhase.Pending, (await MigrationRecord.GetAsync(store))!.NodeState("k8s-w2").Phase);

        var report = await MigrationStatusReport.ReadAsync(store);
        Assert.Equal("cilium", report.Nodes.Single(n => n.Node == "k8s-w1").PrimaryNetwork);
        Assert.Equal("flannel", report.Nodes.Single(n => n.Node == "k8s-w2").PrimaryNetwork);
    }

    [Fact]
    public async Task A_failed_verification_rolls_the_node_back_and_names_the_check()
    {
        var store = await MigratingAsync();
        var host = new RecordingHost { FailCheck = "test pod: no address from 10.245.0.0/16 within 30s" };

        var result = await new NodeMigration(store, host).RunAsync("k8s-w1");

        Assert.Equal(new NodeMigrationResult("k8s-w1", NodeMigrationPhase.RolledBack, host.FailCheck), result);
        Assert.Equal(
        [
            "cordon k8s-w1", "drain k8s-w1", "restart-agent k8s-w1", "reboot k8s-w1", "verify k8s-w1 cilium",
            "restore-cni-config k8s-w1", "restart-agent k8s-w1", "uncordon k8s-w1", "delete-test-pod k8s-w1",
        ], host.Calls);
        Assert.False(await LabelledAsync(store, "k8s-w1"));
        var state = (await MigrationRecord.GetAsync(store))!.NodeState("k8s-w1");
        Assert.Equal((NodeMigrationPhase.RolledBack, MigrationStep.RollbackDeleteTestPod, true, host.FailCheck), (state.Phase, state.Step, state.Done, state.RollbackReason));
        Assert.Equal("flannel", (await MigrationStatusReport.ReadAsync(store)).Nodes.Single(n => n.Node == "k8s-w1").PrimaryNetwork);

        // The fault removed, the node migrates from the start.
        host.FailCheck = null;
        host.Calls.Clear();
        Assert.Equal(NodeMigrationPhase.Migrated, (await new NodeMigration(store, host).RunAsync("k8s-w1")).Phase);
        Assert.Equal("cordon k8s-w1", host.Calls[0]);
        Assert.True(await LabelledAsync(store, "k8s-w1"));
        Assert.Null((await MigrationRecord.GetAsync(store))!.NodeState("k8s-w1").RollbackReason);
    }

    [Fact]
    public async Task A_migrated_node_is_left_alone()
    {
        var store = await MigratingAsync();
        await new NodeMigration(store, new RecordingHost()).RunAsync("k8s-w1");
        var revision = await store.GetRevisionAsync();
        var host = new RecordingHost();
        Assert.Equal(NodeMigrationPhase.Migrated, (await new NodeMigration(store, host).RunAsync("k8s-w1")).Phase);
        Assert.Empty(host.Calls);
        Assert.Equal(revision, await store.GetRevisionAsync());
    }

    [Fact]
    public async Task An_interrupted_step_is_recorded_with_its_error_and_run_again_on_resume()
    {
        var store = await MigratingAsync();
        var host = new RecordingHost { InterruptAtCall = 4 };
        var e = await Assert.ThrowsAsync<IOException>(() => new NodeMigration(store, host).RunAsync("k8s-w1"));
        var state = (await MigrationRecord.GetAsync(store))!.NodeState("k8s-w1");
        Assert.Equal((NodeMigrationPhase.Migrating, MigrationStep.Reboot, false, e.Message), (state.Phase, state.Step, state.Done, state.Error));

        Assert.Equal(NodeMigrationPhase.Migrated, (await new NodeMigration(store, host).RunAsync("k8s-w1")).Phase);
        Assert.Equal(["cordon k8s-w1", "drain k8s-w1", "restart-agent k8s-w1", "reboot k8s-w1", "reboot k8s-w1", "verify k8s-w1 cilium", "uncordon k8s-w1"], host.Calls);
        Assert.Null((await MigrationRecord.GetAsync(store))!.NodeState("k8s-w1").Error);
    }

    [Fact]
    public async Task Refused_without_a_migration_or_for_an_unknown_node_writing_nothing()
    {
        var plain = await MigrationCluster.CreateAsync();
        var e = await Assert.ThrowsAsync<MigrationRefusedException>(() => new NodeMigration(plain, new RecordingHost()).RunAsync("k8s-w1"));
        Assert.Equal("the cluster is not migrating; start with 'loom migrate start'", e.Message);

        var store = await MigratingAsync();
        var revision = await store.GetRevisionAsync();
        var host = new RecordingHost();
        var unknown = await Assert.ThrowsAsync<MigrationRefusedException>(() => new NodeMigration(store, host).RunAsync("k8s-w9"));
        Assert.Equal("node \"k8s-w9\" not found (is its agent running?)", unknown.Message);
        await Assert.ThrowsAsync<MigrationRefusedException>(() => MigrationRollback.StoreOnlyAsync(store, "k8s-w9"));
        Assert.Empty(host.Calls);
        Assert.Equal(revision, await store.GetRevisionAsync());
    }

    [Fact]
    public async Task Rollback_on_demand_in_the_store_unlabels_and_returns_the_host_steps_left()
    {
        var store = await MigratingAsync();
        await new NodeMigration(store, new RecordingHost()).RunAsync("k8s-w1");

        var left = await MigrationRollback.StoreOnlyAsync(store, "k8s-w1");

        Assert.Equal([MigrationStep.RollbackRestoreCniConfig, MigrationStep.RollbackRestartAgent, MigrationStep.RollbackUncordon, MigrationStep.RollbackDeleteTestPod], left);
        Assert.False(await LabelledAsync(store, "k8s-w1"));
        var state = (await MigrationRecord.GetAsync(store))!.NodeState("k8s-w1");
        Assert.Equal((NodeMigrationPhase.RolledBack, "rollback on demand"), (state.Phase, state.RollbackReason));
    }

    [Fact]
    public async Task Rollback_on_demand_with_a_host_runs_the_whole_rollback()
    {
        var store = await MigratingAsync();
        await new NodeMigration(store, new RecordingHost()).RunAsync("k8s-w1");
        var host = new RecordingHost();

        var result = await new NodeMigration(store, host).RollbackAsync("k8s-w1", "operator");

        Assert.Equal(new NodeMigrationResult("k8s-w1", NodeMigrationPhase.RolledBack, "operator"), result);
        Assert.Equal(["restore-cni-config k8s-w1", "restart-agent k8s-w1", "uncordon k8s-w1", "delete-test-pod k8s-w1"], host.Calls);
        Assert.False(await LabelledAsync(store, "k8s-w1"));
    }
}
