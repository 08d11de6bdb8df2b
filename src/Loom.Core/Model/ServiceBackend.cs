using System.Text.Json.Serialization;

namespace Loom.Core.Model;

public enum ServiceBackend
{
    [JsonStringEnumMemberName("iptables")]
    Iptables,
    [JsonStringEnumMemberName("nftables")]
    Nftables,
    [JsonStringEnumMemberName("ebpf")]
    Ebpf,
}
