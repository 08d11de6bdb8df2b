namespace Loom.Core.Model;

/// <summary>A Service's <c>spec.type</c>, as the API server spells it (ExternalName and headless are not supported).</summary>
public enum ServiceType
{
    /// <summary>A virtual IP reachable inside the cluster only.</summary>
    ClusterIP,

    /// <summary>ClusterIP plus a port (30000-32767) on every node's addresses.</summary>
    NodePort,

    /// <summary>NodePort plus, where a load-balancer controller exists, an external address; the lab has none, so <c>&lt;pending&gt;</c>.</summary>
    LoadBalancer,
}
