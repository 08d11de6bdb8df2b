using System.Net;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;

namespace Loom.Core.Tests.Migration;

/// <summary>A Flannel-style cluster in a MemoryStore: the cluster file's default, its nodes, and pods on them.</summary>
internal static class MigrationCluster
{
    public static readonly string[] NodeNames = ["k8s-cp", "k8s-w1", "k8s-w2"];

    public static async Task<IStore> CreateAsync(params string[] nodes)
    {
        var store = MemoryStore.Create();
        await NetworkStore.WriteClusterAsync(store, ClusterFile.Default());
        var i = 10;
        foreach (var n in nodes.Length == 0 ? NodeNames : nodes)
        {
            await store.PutAsync(Kinds.Node, new Node { Name = n, UnderlayInterface = "eth1", UnderlayIp = IPAddress.Parse($"192.168.100.{i++}"), Ready = true });
        }

        return store;
    }

    public static Task PodAsync(IStore store, string name, string node, string ip) =>
        store.PutAsync(Kinds.Endpoint, new Endpoint { Namespace = "default", Name = name, Node = node, ContainerId = "c-" + name, IPs = [IPAddress.Parse(ip)], Ready = true });

    /// <summary>Every object of the kinds a migration touches, as stored, for comparing whole store states.</summary>
    public static async Task<string> DumpAsync(IStore store)
    {
        var lines = new List<string>();
        foreach (var kind in new[] { "config", "network", "nodeconfig", "node", "endpoint", "migration" })
        {
            foreach (var item in (await store.ListAsync(kind)).Items)
            {
                lines.Add($"{kind}/{item.Key} {item.Value}");
            }
        }

        return string.Join("\n", lines);
    }
}
