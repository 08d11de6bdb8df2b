using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>Which service proxy implementation a node runs (config key <c>serviceBackend</c>: iptables, nftables or ebpf); <c>IServiceBackend</c> is the implementation itself.</summary>
public enum ServiceProxyMode
{
    [JsonStringEnumMemberName("iptables")]
    Iptables,
    [JsonStringEnumMemberName("nftables")]
    Nftables,
    [JsonStringEnumMemberName("ebpf")]
    Ebpf,
}
