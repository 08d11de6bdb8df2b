using Loom.Core.Model;

namespace Loom.Core.Networks;

/// <summary>Which network a node's new pods join.</summary>
public static class PrimaryNetwork
{
    /// <summary>
    /// The NodeConfig named after the node (without a nodeSelector) wins; then the NodeConfigs whose nodeSelector
    /// matches the node's labels, the first by name if several do (a stable answer whatever order the store lists
    /// them in); then the cluster's default. Configs that do not set a network are passed over.
    /// </summary>
    public static string Resolve(string node, IReadOnlyDictionary<string, string> labels, IEnumerable<NodeConfig> configs, ClusterConfig cluster)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(configs);
        ArgumentNullException.ThrowIfNull(cluster);
        var withNetwork = configs.Where(c => c.Network is { Length: > 0 }).ToList();
        if (withNetwork.FirstOrDefault(c => c.NodeSelector is null && c.Node == node) is { } own)
        {
            return own.Network!;
        }

        var selected = withNetwork.Where(c => c.NodeSelector is { } s && s.Matches(labels))
            .OrderBy(c => c.Node, StringComparer.Ordinal)
            .FirstOrDefault();
        return selected?.Network ?? cluster.DefaultNetwork;
    }

    public static string Resolve(Node node, IEnumerable<NodeConfig> configs, ClusterConfig cluster)
    {
        ArgumentNullException.ThrowIfNull(node);
        return Resolve(node.Name, node.Labels, configs, cluster);
    }
}
