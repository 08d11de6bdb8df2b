using System.Net;
using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>
/// A node's share of one network, published on its <see cref="Node"/> object so every other node can route to it:
/// its block of the network's pool and, on a tunnel network, the MAC of its VXLAN device there.
/// </summary>
public sealed record NodeNetwork
{
    [JsonPropertyName("podCIDR")]
    public required IPNetwork PodCidr { get; init; }

    /// <summary>Null on a native network, or until the tunnel device exists.</summary>
    public string? VtepMac { get; init; }
}
