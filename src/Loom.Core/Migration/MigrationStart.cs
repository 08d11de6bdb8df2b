using System.Net;
using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Selection;
using Loom.Core.Store;
using Loom.Core.Validation;

namespace Loom.Core.Migration;

/// <summary>
/// <c>migrate start</c>, the guide's first step: the migration network beside the cluster's default one, a NodeConfig
/// that makes it primary on nodes labelled <see cref="ClusterMigration.NodeLabel"/>, policy enforcement off, and the
/// <see cref="ClusterMigration"/> record. Everything is checked before the first write; the record is written last,
/// so a start interrupted before it runs again cleanly (the network and NodeConfig read back unchanged).
/// </summary>
public static class MigrationStart
{
    /// <summary>The scenario's migration network: Cilium's pool, routed over its own VXLAN (loom_vxlan, port 8473, VNI 2).</summary>
    public static Network DefaultNetwork(Network from)
    {
        ArgumentNullException.ThrowIfNull(from);
        return new Network
        {
            Name = "cilium",
            PodCidr = IPNetwork.Parse("10.245.0.0/16"),
            NodeMaskSize = 24,
            Plumbing = Plumbing.Routed,
            RoutingMode = RoutingMode.Tunnel,
            Tunnel = new TunnelConfig { Protocol = TunnelProtocol.Vxlan, Port = 8473, Device = "loom_vxlan", Vni = 2 },
            HostRouting = HostRouting.Legacy,
            // No masquerade change during the move: pods of both networks leave the node the same way.
            Masquerade = from.Masquerade,
        };
    }

    /// <summary>The NodeConfig selecting labelled nodes onto <paramref name="network"/>.</summary>
    public static NodeConfig NodeConfigFor(string network) => new()
    {
        Node = ClusterMigration.NodeConfigName,
        Network = network,
        NodeSelector = new LabelSelector { MatchLabels = new Dictionary<string, string> { [ClusterMigration.NodeLabel] = ClusterMigration.NodeLabelValue } },
    };

    /// <summary>
    /// Starts the migration to <paramref name="network"/> (null: <see cref="DefaultNetwork"/>). Refused, with nothing
    /// written, when the cluster is already migrating or the network is invalid beside the stored ones.
    /// </summary>
    public static async Task<ClusterMigration> RunAsync(IStore store, Network? network, TimeProvider time, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(time);
        if (await MigrationRecord.GetAsync(store, cancellationToken).ConfigureAwait(false) is { IsFinalized: false } running)
        {
            throw new MigrationRefusedException(
                $"the cluster is already migrating from network \"{running.From}\" to \"{running.To}\" (started {running.Started:u}); "
                + "see 'loom migrate status', finish with 'loom migrate finalize'");
        }

        var cluster = (await store.GetAsync(Kinds.ClusterConfig, "cluster", cancellationToken).ConfigureAwait(false))?.Value ?? new ClusterConfig();
        var stored = await NetworkStore.ListAsync(store, cancellationToken).ConfigureAwait(false);
        var from = stored.FirstOrDefault(n => n.Value.Name == cluster.DefaultNetwork)?.Value
            ?? throw new MigrationRefusedException($"the cluster's defaultNetwork \"{cluster.DefaultNetwork}\" is not a stored network; apply it first (loom network apply -f)");
        var to = network ?? DefaultNetwork(from);
        if (to.Name == from.Name)
        {
            throw new MigrationRefusedException($"network \"{to.Name}\" is already the cluster's default network; a migration moves to another one");
        }

        if (stored.FirstOrDefault(n => n.Value.Name == to.Name) is { } same && same.Value != to)
        {
            throw new MigrationRefusedException($"a network \"{to.Name}\" is already stored with other settings; delete it or migrate to a network of another name");
        }

        var nodeConfig = NodeConfigFor(to.Name);
        var existing = await store.GetAsync(Kinds.NodeConfig, nodeConfig.Node, cancellationToken).ConfigureAwait(false);
        if (existing is not null && Json(existing.Value) != Json(nodeConfig))
        {
            throw new MigrationRefusedException($"nodeconfig \"{nodeConfig.Node}\" already exists and says otherwise; delete it first");
        }

        var configErrors = ClusterValidation.NodeConfig(nodeConfig, [.. stored.Select(s => s.Value), to]);
        if (configErrors.Count > 0)
        {
            throw new MigrationRefusedException(string.Join("; ", configErrors));
        }

        // ApplyAsync checks the network against every stored one (pool overlap, tunnel port and device) before it writes.
        await NetworkStore.ApplyAsync(store, [to], cancellationToken).ConfigureAwait(false);
        if (existing is null)
        {
            await NetworkStore.PutNodeConfigAsync(store, nodeConfig, expectedRevision: 0, cancellationToken).ConfigureAwait(false);
        }

        if (await store.UpdateAsync(Kinds.ClusterConfig, "cluster", c => c with { PolicyEnforcementMode = PolicyEnforcementMode.Never }, cancellationToken)
            .ConfigureAwait(false) is null)
        {
            await store.PutAsync(Kinds.ClusterConfig, cluster with { PolicyEnforcementMode = PolicyEnforcementMode.Never }, expectedRevision: 0,
                cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        var (nodes, _) = await store.ListAsync(Kinds.Node, cancellationToken).ConfigureAwait(false);
        var migration = new ClusterMigration
        {
            From = from.Name,
            FromPodCidr = from.PodCidr,
            To = to.Name,
            Started = time.GetUtcNow(),
            Nodes = nodes.ToDictionary(n => n.Key, _ => new NodeMigrationState(), StringComparer.Ordinal),
        };
        var previous = await store.GetAsync(Kinds.Migration, ClusterMigration.Key, cancellationToken).ConfigureAwait(false);
        var put = await store.PutAsync(Kinds.Migration, migration, expectedRevision: previous?.Revision ?? 0, cancellationToken: cancellationToken).ConfigureAwait(false);
        return put.Succeeded ? migration : throw new MigrationRefusedException("another 'loom migrate start' ran meanwhile; see 'loom migrate status'");
    }

    // A NodeConfig's selector compares by reference: compare what is stored.
    private static string Json(NodeConfig c) => JsonSerializer.Serialize(c, Kinds.NodeConfig.TypeInfo);
}
