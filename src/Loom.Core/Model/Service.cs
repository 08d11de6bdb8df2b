using System.Net;
using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>
/// A Service: a virtual IP (and for NodePort and LoadBalancer a port on every node, for <see cref="ExternalIps"/> those
/// addresses too) whose ports are load-balanced over the endpoints the selector matches.
/// </summary>
public sealed record Service
{
    public required string Namespace { get; init; }

    public required string Name { get; init; }

    public required IPAddress ClusterIp { get; init; }

    public ServiceType Type { get; set; } = ServiceType.ClusterIP;

    public IReadOnlyList<ServicePort> Ports { get; set; } = [];

    /// <summary><c>spec.externalIPs</c>: addresses the cluster does not own but routes to a node; each port is served on them.</summary>
    public IReadOnlyList<IPAddress> ExternalIps { get; set; } = [];

    /// <summary>For node ports, external IPs and load-balancer addresses: Local keeps the client's address and uses only local endpoints.</summary>
    public TrafficPolicy ExternalTrafficPolicy { get; set; } = TrafficPolicy.Cluster;

    /// <summary>For the ClusterIP from inside the cluster: Local sends a node's pods only to endpoints on the same node.</summary>
    public TrafficPolicy InternalTrafficPolicy { get; set; } = TrafficPolicy.Cluster;

    /// <summary>
    /// <c>spec.healthCheckNodePort</c>: for a LoadBalancer with externalTrafficPolicy Local, the node port every node
    /// answers health checks on (200 with local endpoints, 503 without), as kube-proxy does; 0 otherwise.
    /// </summary>
    public int HealthCheckNodePort { get; set; }

    public IReadOnlyDictionary<string, string> Selector { get; set; } = new Dictionary<string, string>();

    public SessionAffinity SessionAffinity { get; set; } = SessionAffinity.None;

    /// <summary>How long ClientIP affinity sticks; Kubernetes' default is 3 hours.</summary>
    public int SessionAffinityTimeoutSeconds { get; set; } = 10800;

    [JsonIgnore]
    public string Key => ObjectKey.Of(Namespace, Name);
}
