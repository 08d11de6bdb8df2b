using Loom.Core.Migration;
using Microsoft.Extensions.Time.Testing;

namespace Loom.Core.Tests.Migration;

public class MigrationStatusTests
{
    [Fact]
    public async Task Status_counts_pods_per_network_and_on_the_target()
    {
        var store = await MigrationCluster.CreateAsync();
        await MigrationStart.RunAsync(store, null, new FakeTimeProvider());
        await MigrationCluster.PodAsync(store, "web-1", "k8s-w1", "10.245.1.5");
        await MigrationCluster.PodAsync(store, "web-2", "k8s-w1", "10.244.1.6");
        await MigrationCluster.PodAsync(store, "web-3", "k8s-w2", "10.244.2.7");
        await MigrationCluster.PodAsync(store, "dns-1", "k8s-cp", "10.244.0.2");
        await MigrationCluster.PodAsync(store, "odd", "k8s-cp", "192.0.2.1");
        await MigrationRecord.LabelAsync(store, "k8s-w1", on: true);
        await MigrationRecord.NodeAsync(store, "k8s-w1", _ => new NodeMigrationState { Phase = NodeMigrationPhase.Migrated, Step = MigrationStep.Uncordon, Done = true });

        var report = await MigrationStatusReport.ReadAsync(store);

        Assert.Equal("Cluster pods: 1/5 on cilium", report.Summary);
        Assert.Equal(["k8s-cp", "k8s-w1", "k8s-w2"], report.Nodes.Select(n => n.Node));
        var w1 = report.Nodes[1];
        Assert.Equal((NodeMigrationPhase.Migrated, "cilium"), (w1.State.Phase, w1.PrimaryNetwork));
        Assert.Equal(new Dictionary<string, int> { ["cilium"] = 1, ["flannel"] = 1 }, w1.PodsPerNetwork);
        var cp = report.Nodes[0];
        Assert.Equal((NodeMigrationPhase.Pending, "flannel"), (cp.State.Phase, cp.PrimaryNetwork));
        Assert.Equal(new Dictionary<string, int> { [MigrationStatusReport.NoNetwork] = 1, ["flannel"] = 1 }, cp.PodsPerNetwork);
        Assert.Equal(new Dictionary<string, int> { ["flannel"] = 1 }, report.Nodes[2].PodsPerNetwork);
    }

    [Fact]
    public async Task Status_without_a_migration_reports_the_default_network()
    {
        var store = await MigrationCluster.CreateAsync("k8s-w1");
        await MigrationCluster.PodAsync(store, "web-1", "k8s-w1", "10.244.1.5");
        var report = await MigrationStatusReport.ReadAsync(store);
        Assert.Null(report.Migration);
        Assert.Equal("Cluster pods: 1/1 on flannel", report.Summary);
        Assert.Equal("flannel", Assert.Single(report.Nodes).PrimaryNetwork);
    }

    [Fact]
    public async Task Status_as_json_spells_states_and_steps_as_the_store_does()
    {
        var store = await MigrationCluster.CreateAsync("k8s-w1");
        await MigrationStart.RunAsync(store, null, new FakeTimeProvider());
        await MigrationRecord.NodeAsync(store, "k8s-w1", _ => new NodeMigrationState { Phase = NodeMigrationPhase.RolledBack, Step = MigrationStep.RollbackDeleteTestPod, Done = true });
        var json = System.Text.Json.JsonSerializer.Serialize(await MigrationStatusReport.ReadAsync(store), MigrationJsonContext.Default.MigrationStatusReport);
        Assert.Contains("\"phase\": \"rolled-back\"", json, StringComparison.Ordinal);
        Assert.Contains("\"step\": \"rollback-delete-test-pod\"", json, StringComparison.Ordinal);
        Assert.Contains("\"summary\": \"Cluster pods: 0/0 on cilium\"", json, StringComparison.Ordinal);
        Assert.Contains("\"fromPodCIDR\": \"10.244.0.0/16\"", json, StringComparison.Ordinal);
    }
}
