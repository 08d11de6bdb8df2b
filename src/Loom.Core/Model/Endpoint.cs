using System.Net;
using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>One pod's network attachment: what CNI ADD created and service load-balancing selects.</summary>
public sealed record Endpoint
{
    public required string Namespace { get; init; }

    public required string Name { get; init; }

    public required string Node { get; init; }

    public required string ContainerId { get; init; }

    /// <summary>Interface name inside the pod's netns (usually "eth0").</summary>
    public string Interface { get; set; } = "eth0";

    public IReadOnlyList<IPAddress> IPs { get; set; } = [];

    public IReadOnlyDictionary<string, string> Labels { get; set; } = new Dictionary<string, string>();

    public bool Ready { get; init; }

    /// <summary>The pod's container ports (named ones resolve a NetworkPolicy's named port on this pod).</summary>
    public IReadOnlyList<ContainerPort> Ports { get; set; } = [];

    /// <summary>Store key: "namespace/name", as Kubernetes names namespaced objects.</summary>
    [JsonIgnore]
    public string Key => ObjectKey.Of(Namespace, Name);
}
