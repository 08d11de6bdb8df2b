namespace Loom.Core.Model;

/// <summary><c>spec.externalTrafficPolicy</c> / <c>spec.internalTrafficPolicy</c>: which endpoints a node may send a Service's traffic to.</summary>
public enum TrafficPolicy
{
    /// <summary>Every ready endpoint in the cluster; external traffic is masqueraded to the node so replies come back through it.</summary>
    Cluster,

    /// <summary>Only the endpoints on the node that received the traffic; the client's source address is kept, none local: dropped.</summary>
    Local,
}
