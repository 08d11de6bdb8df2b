using System.Text.Json.Serialization;

namespace Loom.Core.Model;

public enum RoutingMode
{
    /// <summary>VXLAN overlay between nodes.</summary>
    [JsonStringEnumMemberName("tunnel")]
    Tunnel,

    /// <summary>Plain routes via the peer's underlay IP; needs L2 adjacency (flannel's host-gw).</summary>
    [JsonStringEnumMemberName("native")]
    Native,
}
