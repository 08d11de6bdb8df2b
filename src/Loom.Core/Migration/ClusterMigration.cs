using System.Net;
using System.Text.Json.Serialization;

namespace Loom.Core.Migration;

/// <summary>
/// The cluster's move from one network to another, node by node (kind <c>migration</c>, key <c>cluster</c>). Every
/// step records itself before and after it runs, so a command interrupted anywhere can tell where it stopped.
/// </summary>
public sealed record ClusterMigration
{
    /// <summary>The one store key: a cluster migrates to one network at a time.</summary>
    public const string Key = "cluster";

    /// <summary>The NodeConfig that makes the new network primary on labelled nodes (Cilium's <c>cilium-default</c>).</summary>
    public const string NodeConfigName = "loom-migration";

    /// <summary>The node label the NodeConfig selects (Cilium's <c>io.cilium.migration/cilium-default</c>).</summary>
    public const string NodeLabel = "io.loom.migration/loom-default";

    public const string NodeLabelValue = "true";

    /// <summary>The network the cluster leaves (its default network when the migration started).</summary>
    public required string From { get; init; }

    /// <summary>The old network's pool, kept so finalize can count pods still in it after the network is gone.</summary>
    [JsonPropertyName("fromPodCIDR")]
    public IPNetwork FromPodCidr { get; init; }

    public required string To { get; init; }

    public DateTimeOffset Started { get; init; }

    /// <summary>Per node, by name; a node missing here is pending.</summary>
    public IReadOnlyDictionary<string, NodeMigrationState> Nodes { get; set; } = new Dictionary<string, NodeMigrationState>();

    public FinalizeState Finalize { get; set; } = new();

    /// <summary>A finalized migration is history: a new one may start.</summary>
    [JsonIgnore]
    public bool IsFinalized => Finalize.Step == FinalizeStep.Finalized && Finalize.Done;

    public NodeMigrationState NodeState(string node) =>
        Nodes.TryGetValue(node, out var s) ? s : new NodeMigrationState();

    public ClusterMigration WithNode(string node, NodeMigrationState state)
    {
        ArgumentNullException.ThrowIfNull(node);
        return this with { Nodes = new Dictionary<string, NodeMigrationState>(Nodes, StringComparer.Ordinal) { [node] = state } };
    }
}
