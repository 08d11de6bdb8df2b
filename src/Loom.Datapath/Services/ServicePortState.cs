using System.Net;
using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>
/// Everything a backend needs to program one service port: its name, frontend, affinity and the ready backends in a
/// stable order, and for a Service reachable from outside the cluster its node port, external IPs and traffic policies.
/// Equality is by value (backends included), so "changed since the last sync" is a plain comparison.
/// </summary>
public sealed record ServicePortState(
    ServicePortName Name,
    Frontend Frontend,
    SessionAffinity SessionAffinity,
    int AffinityTimeoutSeconds,
    IReadOnlyList<BackendAddress> Backends)
{
    public ServiceType Type { get; init; } = ServiceType.ClusterIP;

    /// <summary>The port on every node address (<see cref="ServiceProxyOptions.NodePortAddresses"/>); 0: none.</summary>
    public int NodePort { get; init; }

    /// <summary><c>spec.externalIPs</c>: served like the ClusterIP, but as external traffic (<see cref="ExternalTrafficPolicy"/>).</summary>
    public IReadOnlyList<IPAddress> ExternalIps { get; init; } = [];

    /// <summary>Node port and external IP traffic: Local uses only <see cref="LocalBackends"/> and keeps the client's address.</summary>
    public TrafficPolicy ExternalTrafficPolicy { get; init; } = TrafficPolicy.Cluster;

    /// <summary>ClusterIP traffic: Local uses only <see cref="LocalBackends"/>.</summary>
    public TrafficPolicy InternalTrafficPolicy { get; init; } = TrafficPolicy.Cluster;

    /// <summary>The Service's health-check node port (LoadBalancer with externalTrafficPolicy Local), else 0.</summary>
    public int HealthCheckNodePort { get; init; }

    public bool HasBackends => Backends.Count > 0;

    /// <summary>The backends on this node, in <see cref="Backends"/>' order.</summary>
    public IEnumerable<BackendAddress> LocalBackends => Backends.Where(b => b.IsLocal);

    /// <summary>Reachable from outside the cluster: a node port or an external IP.</summary>
    public bool IsExternal => NodePort != 0 || ExternalIps.Count > 0;

    /// <summary>The backends ClusterIP traffic may go to under <see cref="InternalTrafficPolicy"/>.</summary>
    public IReadOnlyList<BackendAddress> InternalBackends =>
        InternalTrafficPolicy == TrafficPolicy.Local ? [.. LocalBackends] : Backends;

    /// <summary>The backends node-port and external-IP traffic may go to under <see cref="ExternalTrafficPolicy"/>.</summary>
    public IReadOnlyList<BackendAddress> ExternalBackends =>
        ExternalTrafficPolicy == TrafficPolicy.Local ? [.. LocalBackends] : Backends;

    public bool Equals(ServicePortState? other) =>
        other is not null
        && Name == other.Name
        && Frontend == other.Frontend
        && SessionAffinity == other.SessionAffinity
        && AffinityTimeoutSeconds == other.AffinityTimeoutSeconds
        && Type == other.Type
        && NodePort == other.NodePort
        && ExternalTrafficPolicy == other.ExternalTrafficPolicy
        && InternalTrafficPolicy == other.InternalTrafficPolicy
        && HealthCheckNodePort == other.HealthCheckNodePort
        && ExternalIps.SequenceEqual(other.ExternalIps)
        && Backends.SequenceEqual(other.Backends);

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Name);
        h.Add(Frontend);
        h.Add(SessionAffinity);
        h.Add(AffinityTimeoutSeconds);
        h.Add(Type);
        h.Add(NodePort);
        h.Add(ExternalTrafficPolicy);
        h.Add(InternalTrafficPolicy);
        h.Add(HealthCheckNodePort);
        foreach (var ip in ExternalIps)
        {
            h.Add(ip);
        }

        foreach (var b in Backends)
        {
            h.Add(b);
        }

        return h.ToHashCode();
    }
}
