using System.Net;
using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;

namespace Loom.Lab.Tests;

/// <summary>`loom lab up --config FILE`: the cluster file's config and networks in the lab's store; without one, today's cluster.</summary>
[Collection(SequentialLab.Name)]
public sealed class LabClusterFileTests
{
    internal static string Example(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "examples", "cluster")))
        {
            dir = dir.Parent;
        }

        return File.ReadAllText(Path.Combine(dir?.FullName ?? throw new InvalidOperationException("examples/cluster not found"), "examples", "cluster", name));
    }

    private static async Task<(ClusterConfig Cluster, IReadOnlyList<Network> Networks)> StoredAsync(LabState state)
    {
        var store = await LabStore.OpenStoreAsync(state);
        await using (store)
        {
            var cluster = (await store.GetAsync(Kinds.ClusterConfig, "cluster"))!.Value;
            var (networks, _) = await store.ListAsync(Kinds.Network);
            return (cluster, [.. networks.Select(n => n.Value)]);
        }
    }

    [Fact]
    public async Task Without_a_cluster_file_the_lab_stores_todays_cluster_and_the_flannel_network()
    {
        var o = TestLab.Options(nodes: 1);
        try
        {
            var (cluster, networks) = await StoredAsync(await Lab.UpAsync(o, TextWriter.Null));
            Assert.Equal(JsonSerializer.Serialize(new ClusterConfig(), Kinds.ClusterConfig.TypeInfo), JsonSerializer.Serialize(cluster, Kinds.ClusterConfig.TypeInfo));
            Assert.Equal([Network.Flannel()], networks);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    [Fact]
    public async Task The_cilium_cluster_file_is_stored_with_its_network_as_the_default()
    {
        var file = ClusterFileParser.Parse(Example("cilium.yaml"));
        var o = TestLab.Options(nodes: 1) with { Cluster = file, ServiceBackend = file.Cluster.ServiceBackend };
        try
        {
            var (cluster, networks) = await StoredAsync(await Lab.UpAsync(o, TextWriter.Null));
            Assert.Equal(file.Networks, networks);
            Assert.Equal("cilium", cluster.DefaultNetwork);
            Assert.Equal([IPNetwork.Parse("10.245.0.0/16")], cluster.PodCidrPools);
            Assert.Equal(RoutingMode.Native, cluster.Routing);
            Assert.Equal(ServiceProxyMode.Ebpf, cluster.ServiceBackend);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    [Fact]
    public async Task An_invalid_cluster_is_refused_before_anything_is_built()
    {
        var flannel = Network.Flannel();
        var o = TestLab.Options(nodes: 1) with { Cluster = new ClusterFile([flannel, flannel with { Name = "again" }], new ClusterConfig()) };
        var e = await Assert.ThrowsAsync<LabException>(() => Lab.UpAsync(o, TextWriter.Null));
        Assert.Contains("networks[1].podCIDR", e.Message, StringComparison.Ordinal);
        Assert.Empty(TestLab.Namespaces(o.Prefix));
        Assert.False(Directory.Exists(o.LabDir));
    }
}
