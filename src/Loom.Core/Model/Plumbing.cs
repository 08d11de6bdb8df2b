using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>How a network attaches pods on a node.</summary>
public enum Plumbing
{
    /// <summary>cni0 and a veth per pod (Flannel's bridge delegate); the bridge holds the gateway address.</summary>
    [JsonStringEnumMemberName("bridge")]
    Bridge,

    /// <summary>No bridge: a /32 per pod behind its host veth, the router IP on loom_host (as Cilium's cilium_host).</summary>
    [JsonStringEnumMemberName("routed")]
    Routed,
}
