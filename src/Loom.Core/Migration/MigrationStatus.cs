using System.Net;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;

namespace Loom.Core.Migration;

/// <summary>One node in <c>migrate status</c>: its phase and step, the network its new pods join, its pods per network.</summary>
public sealed record NodeMigrationStatus(string Node, NodeMigrationState State, string PrimaryNetwork, IReadOnlyDictionary<string, int> PodsPerNetwork);

/// <summary><c>migrate status</c>: the migration (null: none stored), every node, and how many of the cluster's pods are on the target network.</summary>
public sealed record MigrationStatusReport(ClusterMigration? Migration, IReadOnlyList<NodeMigrationStatus> Nodes, string Target, int PodsOnTarget, int Pods)
{
    /// <summary>The pod count of an address in no stored network's pool.</summary>
    public const string NoNetwork = "(none)";

    /// <summary>"Cluster pods: X/Y on NETWORK".</summary>
    public string Summary => $"Cluster pods: {PodsOnTarget}/{Pods} on {Target}";

    public static async Task<MigrationStatusReport> ReadAsync(IStore store, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var migration = await MigrationRecord.GetAsync(store, cancellationToken).ConfigureAwait(false);
        var cluster = (await store.GetAsync(Kinds.ClusterConfig, "cluster", cancellationToken).ConfigureAwait(false))?.Value ?? new ClusterConfig();
        var networks = (await NetworkStore.ListAsync(store, cancellationToken).ConfigureAwait(false)).Select(n => n.Value).ToList();
        var (nodes, _) = await store.ListAsync(Kinds.Node, cancellationToken).ConfigureAwait(false);
        var (configs, _) = await store.ListAsync(Kinds.NodeConfig, cancellationToken).ConfigureAwait(false);
        var (endpoints, _) = await store.ListAsync(Kinds.Endpoint, cancellationToken).ConfigureAwait(false);
        return Build(migration, cluster, networks, [.. nodes.Select(n => n.Value)], [.. configs.Select(c => c.Value)], [.. endpoints.Select(e => e.Value)]);
    }

    /// <summary>The report from what the store holds (pure, so it is tested without a store).</summary>
    public static MigrationStatusReport Build(ClusterMigration? migration, ClusterConfig cluster, IReadOnlyList<Network> networks,
        IReadOnlyList<Node> nodes, IReadOnlyList<NodeConfig> configs, IReadOnlyList<Endpoint> endpoints)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(networks);
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(endpoints);
        var target = migration?.To ?? cluster.DefaultNetwork;
        var networkOf = endpoints.ToDictionary(e => e.Key, e => NetworkOf(e, networks), StringComparer.Ordinal);
        var names = nodes.Select(n => n.Name).Concat(migration?.Nodes.Keys ?? []).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        var rows = names.Select(name =>
        {
            var node = nodes.FirstOrDefault(n => n.Name == name);
            var primary = node is null ? "(node gone)" : PrimaryNetwork.Resolve(node, configs, cluster);
            var pods = endpoints.Where(e => e.Node == name).GroupBy(e => networkOf[e.Key], StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
            return new NodeMigrationStatus(name, migration?.NodeState(name) ?? new NodeMigrationState(), primary, pods);
        }).ToList();
        return new MigrationStatusReport(migration, rows, target, networkOf.Values.Count(n => n == target), endpoints.Count);
    }

    /// <summary>The network whose pool holds the pod's first address.</summary>
    public static string NetworkOf(Endpoint endpoint, IReadOnlyList<Network> networks)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(networks);
        return endpoint.IPs.Count == 0 ? NoNetwork
            : networks.FirstOrDefault(n => n.PodCidr.Contains(endpoint.IPs[0]))?.Name ?? NoNetwork;
    }

    /// <summary>How many endpoints have an address in <paramref name="pool"/>.</summary>
    public static int InPool(IEnumerable<Endpoint> endpoints, IPNetwork pool) => endpoints.Count(e => e.IPs.Any(pool.Contains));
}
