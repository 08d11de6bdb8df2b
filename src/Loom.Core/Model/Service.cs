using System.Net;
using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>A ClusterIP service: a virtual IP whose ports are load-balanced over the endpoints the selector matches.</summary>
public sealed record Service
{
    public required string Namespace { get; init; }

    public required string Name { get; init; }

    public required IPAddress ClusterIp { get; init; }

    public IReadOnlyList<ServicePort> Ports { get; set; } = [];

    public IReadOnlyDictionary<string, string> Selector { get; set; } = new Dictionary<string, string>();

    public SessionAffinity SessionAffinity { get; set; } = SessionAffinity.None;

    /// <summary>How long ClientIP affinity sticks; Kubernetes' default is 3 hours.</summary>
    public int SessionAffinityTimeoutSeconds { get; set; } = 10800;

    [JsonIgnore]
    public string Key => ObjectKey.Of(Namespace, Name);
}
