using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>Who forwards pod traffic on a node (Cilium's <c>bpf.hostLegacyRouting</c> the other way round).</summary>
public enum HostRouting
{
    /// <summary>The host's routing table and netfilter.</summary>
    [JsonStringEnumMemberName("legacy")]
    Legacy,

    /// <summary>tc programs redirect with bpf_redirect_peer / bpf_redirect_neigh, skipping the host stack.</summary>
    [JsonStringEnumMemberName("bpf")]
    Bpf,
}
