using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>Encapsulation of a tunnel network (Cilium's <c>tunnelProtocol</c>); Loom has VXLAN only.</summary>
public enum TunnelProtocol
{
    [JsonStringEnumMemberName("vxlan")]
    Vxlan,
}
