using System.Text.Json.Serialization.Metadata;
using Loom.Core.Migration;
using Loom.Core.Model;
using Loom.Core.Policy;
using Loom.Core.Pool;

namespace Loom.Core.Store;

/// <summary>Binds a store kind to a model type: its kind name, its source-generated JSON contract and how its key is formed.</summary>
public sealed class ObjectKind<T>
    where T : class
{
    public ObjectKind(string name, JsonTypeInfo<T> typeInfo, Func<T, string> keyOf)
    {
        StoreKeys.ValidateKind(name);
        Name = name;
        TypeInfo = typeInfo;
        KeyOf = keyOf;
    }

    public string Name { get; }

    public JsonTypeInfo<T> TypeInfo { get; }

    public Func<T, string> KeyOf { get; }
}

/// <summary>The kinds Loom stores.</summary>
public static class Kinds
{
    public static ObjectKind<Node> Node { get; } = new("node", LoomJsonContext.Default.Node, n => n.Name);

    public static ObjectKind<Endpoint> Endpoint { get; } = new("endpoint", LoomJsonContext.Default.Endpoint, e => e.Key);

    public static ObjectKind<Service> Service { get; } = new("service", LoomJsonContext.Default.Service, s => s.Key);

    /// <summary>A single document under the key "cluster".</summary>
    public static ObjectKind<ClusterConfig> ClusterConfig { get; } = new("config", LoomJsonContext.Default.ClusterConfig, _ => "cluster");

    /// <summary>Per-node overrides of the cluster config, keyed by node name.</summary>
    public static ObjectKind<NodeConfig> NodeConfig { get; } = new("nodeconfig", LoomJsonContext.Default.NodeConfig, c => c.Node);

    /// <summary>The cluster's pod networks, keyed by name.</summary>
    public static ObjectKind<Network> Network { get; } = new("network", LoomJsonContext.Default.Network, n => n.Name);

    /// <summary>The cluster's migration between networks, a single document under the key "cluster".</summary>
    public static ObjectKind<ClusterMigration> Migration { get; } = new("migration", LoomJsonContext.Default.ClusterMigration, _ => ClusterMigration.Key);

    /// <summary>Kubernetes NetworkPolicies, keyed "namespace/name".</summary>
    public static ObjectKind<NetworkPolicy> NetworkPolicy { get; } = new("networkpolicy", LoomJsonContext.Default.NetworkPolicy, p => p.Key);

    /// <summary>Namespaces with their labels, keyed by name (a namespace without an object has no labels but its name).</summary>
    public static ObjectKind<ClusterNamespace> Namespace { get; } = new("namespace", LoomJsonContext.Default.ClusterNamespace, n => n.Name);

    /// <summary>Cluster-wide security identities, keyed by the id in decimal.</summary>
    public static ObjectKind<SecurityIdentity> Identity { get; } = new("identity", LoomJsonContext.Default.SecurityIdentity, i => i.Key);

    /// <summary>Label set to identity, keyed by the set's hash; created only by compare-and-swap.</summary>
    public static ObjectKind<IdentityKey> IdentityKey { get; } = new("identitykey", LoomJsonContext.Default.IdentityKey, k => k.Hash);

    /// <summary>Nodes' references to identities, keyed "ID/NODE".</summary>
    public static ObjectKind<IdentityRef> IdentityRef { get; } = new("identityref", LoomJsonContext.Default.IdentityRef, r => r.Key);

    /// <summary>Pod CIDR claims: key = CIDR text, value = the owning node.</summary>
    public static ObjectKind<PodCidrClaim> PodCidr { get; } = new("podcidr", LoomJsonContext.Default.PodCidrClaim, c => c.Cidr.ToString());
}
