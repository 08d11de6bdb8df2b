using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>How pod traffic leaving the pod network is SNATed to the node's address.</summary>
public enum Masquerade
{
    [JsonStringEnumMemberName("iptables")]
    Iptables,

    /// <summary>In tc on the underlay device, with a NAT table in BPF maps (Cilium's <c>bpf.masquerade</c>).</summary>
    [JsonStringEnumMemberName("bpf")]
    Bpf,

    [JsonStringEnumMemberName("none")]
    None,
}
